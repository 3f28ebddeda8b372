"""Streamed messages in Salesforce's shapes (research §3) become events."""

from datetime import UTC, datetime

import pytest

from sftriggerd.events.normalise import (
    Gap,
    MalformedMessage,
    from_cdc,
    from_generic,
    from_platform_event,
    from_pushtopic,
)


def cdc(change_type: str, record_ids: list[str], **fields: object) -> dict[str, object]:
    return {
        "channel": "/data/AccountChangeEvent",
        "data": {
            "schema": "idzQ0I-adgCfqNzILegnJg",
            "payload": {
                "ChangeEventHeader": {
                    "entityName": "Account",
                    "recordIds": record_ids,
                    "changeType": change_type,
                    "changeOrigin": "com/salesforce/api/rest/60.0;client=x",
                    "transactionKey": "000c6c88-b097-f5fb-0005-65d83dc022e5",
                    "sequenceNumber": 1,
                    "commitTimestamp": 1569407548000,
                    "commitNumber": 10583584855437,
                    "commitUser": "0054J000000g1dGQAQ",
                    "changedFields": ["Name", "LastModifiedDate"],
                    "diffFields": [],
                    "nulledFields": [],
                },
                **fields,
            },
            "event": {"replayId": 103773372},
        },
    }


def test_cdc_update() -> None:
    [event] = from_cdc("t", "/data/AccountChangeEvent", cdc("UPDATE", ["001A"], Name="Acme"))
    assert event.change == "updated" and event.type == "account.updated"
    assert event.record_id == "001A"
    assert event.changed_fields == ("Name", "LastModifiedDate")
    assert event.record == {"Id": "001A", "Name": "Acme"}
    assert event.occurred_at == datetime(2019, 9, 25, 10, 32, 28, tzinfo=UTC)
    assert event.source == {
        "kind": "streaming",
        "channel": "/data/AccountChangeEvent",
        "replay_id": 103773372,
    }


def test_merged_cdc_event_gives_one_event_per_record_with_stable_ids() -> None:
    message = cdc("CREATE", ["001A", "001B", "001C"], Name="Bulk")
    events = from_cdc("t", "/data/AccountChangeEvent", message)
    assert [e.record_id for e in events] == ["001A", "001B", "001C"]
    assert {e.change for e in events} == {"created"}
    assert all(e.changed_fields == () for e in events)
    assert len({e.id for e in events}) == 3
    again = from_cdc("t", "/data/AccountChangeEvent", message)
    assert [e.id for e in again] == [e.id for e in events]


@pytest.mark.parametrize(("kind", "change"), [("DELETE", "deleted"), ("UNDELETE", "undeleted")])
def test_cdc_delete_and_undelete(kind: str, change: str) -> None:
    [event] = from_cdc("t", "/data/AccountChangeEvent", cdc(kind, ["001A"]))
    assert event.change == change


@pytest.mark.parametrize("kind", ["GAP_UPDATE", "GAP_CREATE", "GAP_OVERFLOW"])
def test_gap_notices(kind: str) -> None:
    record_ids = [] if kind == "GAP_OVERFLOW" else ["001A", "001B"]
    gap = from_cdc("t", "/data/AccountChangeEvent", cdc(kind, record_ids))
    assert isinstance(gap, Gap)
    assert gap.overflow == (kind == "GAP_OVERFLOW")
    assert gap.record_ids == tuple(record_ids)


def test_platform_event_uses_its_uuid() -> None:
    message = {
        "channel": "/event/Low_Ink__e",
        "data": {
            "schema": "x",
            "payload": {"CreatedDate": "2023-04-09T18:31:40.517Z", "Printer_Model__c": "XZO-5"},
            "event": {"EventUuid": "2ec0e371-1395-457f-9275-be1b527a72f7", "replayId": 2112},
        },
    }
    event = from_platform_event("t", "/event/Low_Ink__e", message)
    assert event.type == "low_ink__e.event" and event.record_id is None
    assert event.record["Printer_Model__c"] == "XZO-5"
    moved = {
        **message,
        "data": {
            **message["data"],
            "event": {  # type: ignore[dict-item]
                "EventUuid": "2ec0e371-1395-457f-9275-be1b527a72f7",
                "replayId": 9999,
            },
        },
    }
    assert from_platform_event("t", "/event/Low_Ink__e", moved).id == event.id


def test_pushtopic() -> None:
    message = {
        "channel": "/topic/Inv",
        "data": {
            "event": {"createdDate": "2016-03-29T16:40:08.208Z", "replayId": 13, "type": "created"},
            "sobject": {"Name": "INV-0001", "Id": "a00D0000008o6y8IAA"},
        },
    }
    event = from_pushtopic("t", "Invoice__c", "/topic/Inv", message)
    assert (event.change, event.record_id, event.type) == (
        "created",
        "a00D0000008o6y8IAA",
        "invoice__c.created",
    )


def test_generic() -> None:
    message = {
        "channel": "/u/Notes",
        "data": {
            "event": {"createdDate": "2016-03-29T19:05:28.334Z", "replayId": 55},
            "payload": "This is a message.",
        },
    }
    event = from_generic("t", "/u/Notes", message)
    assert event.record == {"payload": "This is a message."} and event.object == "Notes"


@pytest.mark.parametrize(
    "message",
    [
        {},
        {"data": "x"},
        {"data": {"payload": {}}},
        {"data": {"payload": {"ChangeEventHeader": {"changeType": "WHAT", "commitTimestamp": 1}}}},
    ],
)
def test_malformed_messages_are_clear_errors(message: dict[str, object]) -> None:
    with pytest.raises(MalformedMessage):
        from_cdc("t", "/data/AccountChangeEvent", message)
