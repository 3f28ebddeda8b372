"""The webhook body of CONTRACT §3, byte for byte against a snapshot."""

import json
from datetime import UTC, datetime
from pathlib import Path

from sftriggerd.events.model import Event, event_id
from sftriggerd.events.payload import build_body, encode_body, format_time

SNAPSHOTS = Path(__file__).parent / "snapshots"

UPDATED = Event(
    id="evt_0123456789abcdef0123456789abcdef",
    trigger="account-changes",
    object="Account",
    change="updated",
    record_id="001xx000003DGb2AAG",
    occurred_at=datetime(2026, 11, 28, 10, 15, 2, tzinfo=UTC),
    source={"kind": "streaming", "channel": "/data/AccountChangeEvent", "replay_id": 12345},
    changed_fields=("Name",),
    record={"Id": "001xx000003DGb2AAG", "Name": "Acme"},
    raw={"schema": "abc", "payload": {"Name": "Acme"}, "event": {"replayId": 12345}},
)

PLATFORM_EVENT = Event(
    id="evt_ffff",
    trigger="order-placed",
    object="Order_Placed__e",
    change="event",
    record_id=None,
    occurred_at=datetime(2026, 11, 28, 10, 15, 2, 517000, tzinfo=UTC),
    source={"kind": "streaming", "channel": "/event/Order_Placed__e", "replay_id": 7},
    record={"Amount__c": 12.5, "Name": "Café"},
)


def test_updated_record_body_matches_snapshot() -> None:
    expected = (SNAPSHOTS / "account_updated.json").read_bytes().strip()
    assert encode_body(UPDATED) == expected


def test_platform_event_body_matches_snapshot() -> None:
    expected = (SNAPSHOTS / "platform_event.json").read_bytes().strip()
    assert encode_body(PLATFORM_EVENT) == expected


def test_body_has_every_contract_field_in_order() -> None:
    body = build_body(UPDATED)
    assert list(body) == [
        "id",
        "type",
        "trigger",
        "object",
        "change",
        "record_id",
        "occurred_at",
        "source",
        "changed_fields",
        "record",
        "raw",
    ]
    assert body["type"] == "account.updated"
    assert body["occurred_at"] == "2026-11-28T10:15:02.000Z"
    assert json.loads(encode_body(PLATFORM_EVENT))["type"] == "order_placed__e.event"


def test_changed_fields_is_always_a_list() -> None:
    created = Event(
        id="e",
        trigger="t",
        object="Lead",
        change="created",
        record_id="00Q",
        occurred_at=UPDATED.occurred_at,
        source={"kind": "polling"},
    )
    assert build_body(created)["changed_fields"] == []


def test_times_are_utc_with_milliseconds() -> None:
    from datetime import timedelta, timezone

    paris = timezone(timedelta(hours=1))
    assert format_time(datetime(2026, 1, 1, 1, 0, 0, 123456, tzinfo=paris)) == (
        "2026-01-01T00:00:00.123Z"
    )


def test_event_ids_are_stable_and_distinct() -> None:
    assert event_id("cdc", "txn", 1, "001A") == event_id("cdc", "txn", 1, "001A")
    assert event_id("cdc", "txn", 1, "001A") != event_id("cdc", "txn", 1, "001B")
    assert event_id("x").startswith("evt_") and len(event_id("x")) == 36
