"""The streaming side's pure parts: streams, channel names, payload builders, PushTopics."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sftriggerd_emulator.context import ChangeType, EmulatorSettings, RecordChange
from sftriggerd_emulator.streaming import payloads
from sftriggerd_emulator.streaming.channels import (
    ChannelNames,
    UnknownFilterFieldsError,
    change_channel_of,
)
from sftriggerd_emulator.streaming.clients import ClientRegistry, Hold
from sftriggerd_emulator.streaming.pushtopics import PushTopic, PushTopics
from sftriggerd_emulator.streaming.streams import (
    CDC_STREAM,
    ReplayInvalidError,
    Stream,
    first_replay_id,
)

T0 = datetime(2026, 11, 29, 10, 0, 0, tzinfo=UTC)


def filled_stream(count: int, retention_s: float = 3600) -> tuple[Stream, list[int]]:
    stream = Stream("/event/Test__e", retention_s)
    ids = [
        stream.append(T0 + timedelta(minutes=n), "Test__e", {"event": {}}).replay_id
        for n in range(count)
    ]
    return stream, ids


def change(
    change_type: ChangeType,
    records: list[dict[str, Any]],
    *,
    object_name: str = "Account",
    fields: dict[str, Any] | None = None,
    changed: tuple[str, ...] = (),
    nulled: tuple[str, ...] = (),
) -> RecordChange:
    return RecordChange(
        object_name=object_name,
        change_type=change_type,
        record_ids=tuple(str(r["Id"]) for r in records),
        fields=fields or {},
        changed_fields=changed,
        nulled_fields=nulled,
        commit_time=T0,
        commit_user="005EM0000000001YAA",
        transaction_key="tx-1",
        change_origin="com/salesforce/api/rest/60.0",
        records=tuple(records),
    )


# -- streams ------------------------------------------------------------------------------


def test_stream_ids_start_per_stream_and_skip_numbers() -> None:
    stream, ids = filled_stream(10)
    assert ids[0] == first_replay_id("/event/Test__e")
    assert first_replay_id("/event/Test__e") != first_replay_id("/event/Other__e")
    steps = [b - a for a, b in itertools.pairwise(ids)]
    assert min(steps) >= 1 and max(steps) > 1
    assert stream.last_replay_id == ids[-1]


def test_stream_fills_the_replay_id_without_touching_the_given_data() -> None:
    stream = Stream("/u/X", 60)
    data: dict[str, Any] = {"event": {"createdDate": "x", "replayId": 0}, "payload": "p"}
    event = stream.append(T0, "/u/X", data)
    assert event.data["event"] == {"createdDate": "x", "replayId": event.replay_id}
    assert data["event"]["replayId"] == 0


def test_start_cursor_new_all_and_after_n() -> None:
    stream, ids = filled_stream(4)
    assert stream.start_cursor(-1) == ids[-1]
    assert [e.replay_id for e in stream.after(stream.start_cursor(-2))] == ids
    assert [e.replay_id for e in stream.after(stream.start_cursor(ids[1]))] == ids[2:]
    # A number between two ids is accepted: Salesforce's ids are not contiguous either.
    assert stream.start_cursor(ids[1] + 1) == ids[1] + 1


@pytest.mark.parametrize("replay", [0, -3, "abc", 1.5, True, None])
def test_start_cursor_refuses_what_is_not_an_id(replay: object) -> None:
    stream, _ = filled_stream(2)
    with pytest.raises(ReplayInvalidError):
        stream.start_cursor(replay)


def test_start_cursor_refuses_ids_outside_retention() -> None:
    stream, ids = filled_stream(4)
    with pytest.raises(ReplayInvalidError):
        stream.start_cursor(ids[-1] + 1)
    assert stream.drop_before(ids[2]) == ids[:2]
    with pytest.raises(ReplayInvalidError):
        stream.start_cursor(ids[1])
    assert stream.start_cursor(ids[2]) == ids[2]
    empty = Stream("/u/Empty", 60)
    assert empty.start_cursor(-1) == 0 and empty.start_cursor(-2) == 0
    with pytest.raises(ReplayInvalidError):
        empty.start_cursor(5)


def test_purge_drops_events_older_than_the_window() -> None:
    stream, ids = filled_stream(5, retention_s=120)  # events at minutes 0..4
    assert stream.purge(T0 + timedelta(minutes=4)) == ids[:2]
    assert stream.oldest_replay_id == ids[2]
    assert stream.purge(T0 + timedelta(hours=1)) == ids[2:]
    assert len(stream) == 0 and stream.last_replay_id == ids[-1]


# -- channel names ------------------------------------------------------------------------


def test_channel_names_resolve_to_streams_and_filters() -> None:
    names = ChannelNames(lambda name: frozenset({"id", "stage"}) if name == "Deals" else None)
    assert names.resolve("/data/ChangeEvents") is not None
    account = names.resolve("/data/AccountChangeEvent")
    assert account is not None and account.stream == CDC_STREAM
    assert account.entities == frozenset({"Account"})
    custom = names.resolve("/data/Invoice__ChangeEvent")
    assert custom is not None and custom.entities == frozenset({"Invoice__c"})
    assert change_channel_of("Invoice__c") == "/data/Invoice__ChangeEvent"
    assert change_channel_of("Account") == "/data/AccountChangeEvent"
    event = names.resolve("/event/Low_Ink__e")
    assert event is not None and event.stream == "/event/Low_Ink__e"
    assert names.resolve("/event/BatchApexErrorEvent") is not None
    assert names.resolve("/event/Unknown") is None
    assert names.resolve("/topic/Deals") is not None
    assert names.resolve("/topic/Other") is None
    filtered = names.resolve("/topic/Deals?Stage=Won")
    assert filtered is not None and filtered.stream == "/topic/Deals"
    assert filtered.filters == (("Stage", "Won"),)
    with pytest.raises(UnknownFilterFieldsError):
        names.resolve("/topic/Deals?Amount=5")
    assert names.resolve("/u/Alerts") is None
    assert names.resolve("/data/AccountChangeEvent/x") is None
    names.define("/u/Alerts", None)
    assert names.resolve("/u/Alerts") is not None
    with pytest.raises(ValueError):
        names.define("/topic/Nope", None)


# -- payloads ------------------------------------------------------------------------------


def test_cdc_values_and_compound_field_paths() -> None:
    assert payloads.cdc_value("2019-09-25T10:32:28.000+0000") == "2019-09-25T10:32:28Z"
    assert payloads.cdc_value("2019-09-25T10:32:28.120+0000") == "2019-09-25T10:32:28.120Z"
    assert payloads.cdc_value("2019-09-25") == "2019-09-25"
    assert payloads.field_path("Account", "BillingCity") == "BillingAddress.City"
    assert payloads.field_path("Lead", "PostalCode") == "Address.PostalCode"
    assert payloads.field_path("Contact", "LastName") == "Name.LastName"
    assert payloads.field_path("Account", "LastName") == "LastName"
    assert payloads.cdc_body("Account", {"Id": "x", "Name": "A", "ShippingState": "CA"}) == {
        "Name": "A",
        "ShippingAddress": {"State": "CA"},
    }


def test_change_bodies_merge_identical_records_and_split_different_ones() -> None:
    same = [{"Id": f"001{i}", "Industry": "Energy", "Name": None} for i in range(3)]
    assert payloads.change_bodies(change("CREATE", same)) == [
        (("0010", "0011", "0012"), {"Industry": "Energy"})
    ]
    different = [{"Id": "001a", "Name": "A"}, {"Id": "001b", "Name": "B"}]
    assert payloads.change_bodies(change("CREATE", different)) == [
        (("001a",), {"Name": "A"}),
        (("001b",), {"Name": "B"}),
    ]
    deleted = change("DELETE", different)
    assert payloads.change_bodies(deleted) == [(("001a", "001b"), {})]


def test_change_event_header_has_every_field() -> None:
    update = change(
        "UPDATE",
        [{"Id": "001a"}],
        fields={"BillingCity": None, "LastModifiedDate": "2026-11-29T10:00:00.000+0000"},
        changed=("BillingCity", "LastModifiedDate"),
        nulled=("BillingCity",),
    )
    [(ids, body)] = payloads.change_bodies(update)
    data = payloads.change_event(
        "Account",
        "UPDATE",
        ids,
        body,
        update,
        payloads.ChangeHeader(2, 123),
        commit_time=T0,
        commit_user="005x",
    )
    assert data["event"] == {"replayId": 0}
    assert data["payload"] == {
        "ChangeEventHeader": {
            "entityName": "Account",
            "recordIds": ["001a"],
            "changeType": "UPDATE",
            "changeOrigin": "com/salesforce/api/rest/60.0",
            "transactionKey": "tx-1",
            "sequenceNumber": 2,
            "commitTimestamp": int(T0.timestamp() * 1000),
            "commitNumber": 123,
            "commitUser": "005x",
            "nulledFields": ["BillingAddress.City"],
            "diffFields": [],
            "changedFields": ["BillingAddress.City", "LastModifiedDate"],
        },
        "BillingAddress": {"City": None},
        "LastModifiedDate": "2026-11-29T10:00:00Z",
    }
    assert data["schema"] == payloads.schema_id("Account") != payloads.schema_id("Contact")


def test_platform_generic_and_pushtopic_shapes() -> None:
    event = payloads.platform_event(
        "Low_Ink__e", {"Level__c": 2}, created=T0, created_by="005EM0000000001", event_uuid="u"
    )
    assert event["payload"] == {
        "CreatedDate": "2026-11-29T10:00:00.000Z",
        "CreatedById": "005EM0000000001",
        "Level__c": 2,
    }
    assert event["event"] == {"EventUuid": "u", "replayId": 0}
    assert payloads.generic_event("hi", T0) == {
        "event": {"createdDate": "2026-11-29T10:00:00.000Z", "replayId": 0},
        "payload": "hi",
    }
    assert payloads.pushtopic_event("created", {"Id": "1"}, T0)["event"]["type"] == "created"


# -- PushTopics ----------------------------------------------------------------------------

OPPORTUNITY = {
    "Id": "006a",
    "Name": "Big",
    "Amount": 5000,
    "CloseDate": "2026-12-01",
    "LastModifiedDate": "2026-11-29T10:00:00.000+0000",
}


def topic(query: str, **flags: Any) -> PushTopic:
    return PushTopic.from_record({"Id": "0IF1", "Name": "T", "Query": query, **flags})


def test_pushtopic_where_and_select() -> None:
    big = topic("SELECT Id, Name FROM Opportunity WHERE Amount > 1000 AND CloseDate > 2026-11-01")
    created = change("CREATE", [OPPORTUNITY], object_name="Opportunity")
    assert big.events_for(created) == [("created", {"Id": "006a", "Name": "Big"})]
    small = change("CREATE", [OPPORTUNITY | {"Amount": 5}], object_name="Opportunity")
    assert big.events_for(small) == []
    other_object = change("CREATE", [OPPORTUNITY], object_name="Account")
    assert big.events_for(other_object) == []


def test_pushtopic_datetime_comparison_and_unknown_fields() -> None:
    recent = topic("SELECT Id FROM Opportunity WHERE LastModifiedDate > 2026-11-29T09:00:00Z")
    created = change("CREATE", [OPPORTUNITY], object_name="Opportunity")
    assert recent.events_for(created) == [("created", {"Id": "006a"})]
    missing = topic("SELECT Id, Stage__c FROM Opportunity WHERE Stage__c = null")
    assert missing.events_for(created) == [("created", {"Id": "006a", "Stage__c": None})]


@pytest.mark.parametrize(
    ("notify", "changed", "expected"),
    [
        ("Referenced", ("Amount",), True),
        ("Referenced", ("Description",), False),
        ("Select", ("Amount",), False),
        ("Select", ("Name",), True),
        ("Where", ("Amount",), True),
        ("Where", ("Name",), False),
        ("All", ("Description",), True),
    ],
)
def test_pushtopic_notify_for_fields(notify: str, changed: tuple[str, ...], expected: bool) -> None:
    watched = topic("SELECT Id, Name FROM Opportunity WHERE Amount > 10", NotifyForFields=notify)
    update = change("UPDATE", [OPPORTUNITY], object_name="Opportunity", changed=changed)
    assert bool(watched.events_for(update)) is expected


def test_pushtopic_operations_inactive_and_bad_queries() -> None:
    no_deletes = topic("SELECT Id FROM Opportunity", NotifyForOperationDelete=False)
    deleted = change("DELETE", [OPPORTUNITY], object_name="Opportunity")
    assert no_deletes.events_for(deleted) == []
    assert topic("SELECT Id FROM Opportunity").events_for(deleted) == [("deleted", {"Id": "006a"})]
    inactive = topic("SELECT Id FROM Opportunity", IsActive=False)
    assert inactive.events_for(change("CREATE", [OPPORTUNITY], object_name="Opportunity")) == []
    broken = topic("SELEKT nonsense")
    assert broken.query is None
    assert broken.events_for(change("CREATE", [OPPORTUNITY], object_name="Opportunity")) == []


def test_pushtopics_learn_renames_and_deletes() -> None:
    topics = PushTopics()
    record = {"Id": "0IF1", "Name": "First", "Query": "SELECT Id FROM Account"}
    topics.learn(change("CREATE", [record], object_name="PushTopic"))
    assert topics.exists("First")
    topics.learn(change("UPDATE", [record | {"Name": "Second"}], object_name="PushTopic"))
    assert not topics.exists("First") and topics.exists("Second")
    restored = PushTopics([topic.definition() for topic in topics.topics()])
    restored.learn(change("DELETE", [record | {"Name": "Second"}], object_name="PushTopic"))
    assert not restored.exists("Second")


# -- clients -------------------------------------------------------------------------------


def test_clients_expire_unless_a_connect_is_held() -> None:
    settings = EmulatorSettings(cometd_client_expiry_s=40, max_cometd_clients=2)
    registry = ClientRegistry(settings)
    held = registry.add("005a", "browser", T0)
    idle = registry.add("005a", "browser", T0)
    assert held is not None and idle is not None
    assert registry.add("005a", "browser", T0) is None
    held.hold = Hold()
    later = T0 + timedelta(seconds=41)
    assert registry.get(idle.client_id, later) is None
    assert registry.get(held.client_id, later) is held
    assert registry.add("005a", "browser", later) is not None
