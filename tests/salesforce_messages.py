"""Streamed messages in Salesforce's shapes, for the normalisation and ingest tests."""

from __future__ import annotations

from typing import Any

CDC_CHANNEL = "/data/AccountChangeEvent"
PE_CHANNEL = "/event/Low_Ink__e"
TOPIC_CHANNEL = "/topic/Inv"
GENERIC_CHANNEL = "/u/Notes"


def cdc(
    change_type: str, record_ids: list[str], replay: int | None = 103773372, **fields: Any
) -> dict[str, Any]:
    event = {} if replay is None else {"replayId": replay}
    return {
        "channel": CDC_CHANNEL,
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
            "event": event,
        },
    }


def platform_event(replay: int | None = 2112, **payload: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"EventUuid": "2ec0e371-1395-457f-9275-be1b527a72f7"}
    if replay is not None:
        event["replayId"] = replay
    return {
        "channel": PE_CHANNEL,
        "data": {
            "schema": "x",
            "payload": {
                "CreatedDate": "2023-04-09T18:31:40.517Z",
                "Printer_Model__c": "XZO-5",
                **payload,
            },
            "event": event,
        },
    }


def pushtopic(replay: int | None = 13, name: str = "INV-0001") -> dict[str, Any]:
    event: dict[str, Any] = {"createdDate": "2016-03-29T16:40:08.208Z", "type": "created"}
    if replay is not None:
        event["replayId"] = replay
    return {
        "channel": TOPIC_CHANNEL,
        "data": {"event": event, "sobject": {"Name": name, "Id": "a00D0000008o6y8IAA"}},
    }


def generic(replay: int | None = 55, payload: Any = "This is a message.") -> dict[str, Any]:
    event: dict[str, Any] = {"createdDate": "2016-03-29T19:05:28.334Z"}
    if replay is not None:
        event["replayId"] = replay
    return {"channel": GENERIC_CHANNEL, "data": {"event": event, "payload": payload}}
