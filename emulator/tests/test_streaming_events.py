"""What subscribers receive, over real HTTP: CDC, PushTopic, platform and generic events."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from emulator.tests.streaming_helpers import Bayeux, cookie_jar, headers_of
from sftriggerd_emulator.context import EmulatorSettings
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient, control

TIMEOUT_MS = 1500
CDC_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
ISO_MS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
ADMIN_USER_ID = "005EM0000000001YAA"


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    return EmulatorSettings(state_dir=tmp_path / "org", cometd_timeout_ms=TIMEOUT_MS)


@pytest.fixture
async def cometd_http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=cookie_jar()) as session:
        yield session


@pytest.fixture
def bayeux(emulator: RunningEmulator, org: OrgClient, cometd_http: aiohttp.ClientSession) -> Bayeux:
    return Bayeux(cometd_http, emulator.url, org.token)


def payload_of(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event["data"]["payload"].items() if k != "ChangeEventHeader"}


async def test_create_event_has_the_full_header_and_non_empty_fields(
    bayeux: Bayeux, org: OrgClient
) -> None:
    await bayeux.start("/data/AccountChangeEvent")
    before_ms = int(datetime.now(UTC).timestamp() * 1000) - 1000
    record_id = await org.create("Account", {"Name": "Acme", "Industry": None, "Rating": 3})
    [event] = await bayeux.events()
    assert event["channel"] == "/data/AccountChangeEvent"
    data = event["data"]
    assert set(data) == {"schema", "payload", "event"}
    assert isinstance(data["schema"], str) and len(data["schema"]) == 22
    assert set(data["event"]) == {"replayId"}
    header = data["payload"]["ChangeEventHeader"]
    assert header["entityName"] == "Account"
    assert header["recordIds"] == [record_id]
    assert header["changeType"] == "CREATE"
    assert header["changeOrigin"] == "com/salesforce/api/rest/60.0"
    uuid.UUID(header["transactionKey"])
    assert header["sequenceNumber"] == 1
    assert before_ms <= header["commitTimestamp"] <= before_ms + 5000
    assert isinstance(header["commitNumber"], int) and header["commitNumber"] > 10**12
    assert header["commitUser"] == ADMIN_USER_ID
    assert header["changedFields"] == []
    assert header["diffFields"] == []
    assert header["nulledFields"] == []
    body = payload_of(event)
    assert set(body) == {
        "Name",
        "Rating",
        "CreatedDate",
        "CreatedById",
        "LastModifiedDate",
        "LastModifiedById",
    }
    assert body["Name"] == "Acme" and body["Rating"] == 3
    assert CDC_DATETIME.fullmatch(body["CreatedDate"])
    assert body["CreatedById"] == ADMIN_USER_ID


async def test_update_delete_undelete_bodies(
    bayeux: Bayeux, org: OrgClient, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    record_id = await org.create("Account", {"Name": "Acme", "Industry": "Retail", "Rating": 1})
    await bayeux.start("/data/ChangeEvents")
    answer = await org.call(
        "PATCH", f"sobjects/Account/{record_id}", json={"Name": "Acme 2", "Industry": None}
    )
    assert answer.status == 204
    assert (await org.call("DELETE", f"sobjects/Account/{record_id}")).status == 204
    undone = await control(http, emulator.url, f"undelete/Account/{record_id}", {})
    assert undone.status == 200
    update, delete, undelete = await bayeux.events()
    assert {e["channel"] for e in (update, delete, undelete)} == {"/data/ChangeEvents"}

    header = update["data"]["payload"]["ChangeEventHeader"]
    assert header["changeType"] == "UPDATE"
    assert sorted(header["changedFields"]) == ["Industry", "LastModifiedDate", "Name"]
    assert header["nulledFields"] == ["Industry"]
    body = payload_of(update)
    assert body.pop("LastModifiedDate")
    assert body == {"Name": "Acme 2", "Industry": None}

    header = delete["data"]["payload"]["ChangeEventHeader"]
    assert (header["changeType"], header["recordIds"]) == ("DELETE", [record_id])
    assert payload_of(delete) == {}

    header = undelete["data"]["payload"]["ChangeEventHeader"]
    assert (header["changeType"], header["recordIds"]) == ("UNDELETE", [record_id])
    assert header["changeOrigin"] == ""
    body = payload_of(undelete)
    assert body["Name"] == "Acme 2" and body["Rating"] == 1
    assert "Industry" not in body and "IsDeleted" not in body and "SystemModstamp" not in body


async def test_one_transaction_of_identical_changes_is_one_merged_event(
    bayeux: Bayeux, org: OrgClient
) -> None:
    await bayeux.start("/data/AccountChangeEvent")
    ids = await org.create_many("Account", [{"Industry": "Energy"}] * 3)
    [event] = await bayeux.events()
    header = event["data"]["payload"]["ChangeEventHeader"]
    assert header["recordIds"] == ids
    assert header["changeType"] == "CREATE"
    assert payload_of(event)["Industry"] == "Energy"


async def test_a_transaction_of_different_records_shares_its_key_in_sequence(
    bayeux: Bayeux, org: OrgClient
) -> None:
    await bayeux.start("/data/ChangeEvents")
    ids = await org.create_many("Account", [{"Name": "One"}, {"Name": "Two"}])
    events = await bayeux.events()
    headers = headers_of(events)
    assert [h["recordIds"] for h in headers] == [[ids[0]], [ids[1]]]
    assert [payload_of(e)["Name"] for e in events] == ["One", "Two"]
    assert [h["sequenceNumber"] for h in headers] == [1, 2]
    assert headers[0]["transactionKey"] == headers[1]["transactionKey"]


async def test_object_channels_filter_and_custom_objects_have_their_own(
    bayeux: Bayeux, org: OrgClient
) -> None:
    await bayeux.start("/data/Invoice__ChangeEvent")
    await org.create("Account", {"Name": "not an invoice"})
    invoice_id = await org.create("Invoice__c", {"Amount__c": 12.5})
    [event] = await bayeux.events()
    assert event["channel"] == "/data/Invoice__ChangeEvent"
    header = event["data"]["payload"]["ChangeEventHeader"]
    assert (header["entityName"], header["recordIds"]) == ("Invoice__c", [invoice_id])


async def test_compound_fields_nest_in_change_events(bayeux: Bayeux, org: OrgClient) -> None:
    await bayeux.start("/data/ContactChangeEvent")
    record_id = await org.create(
        "Contact", {"FirstName": "Ada", "LastName": "Lovelace", "MailingCity": "London"}
    )
    await org.call("PATCH", f"sobjects/Contact/{record_id}", json={"MailingCity": "Paris"})
    create, update = await bayeux.events()
    body = payload_of(create)
    assert body["Name"] == {"FirstName": "Ada", "LastName": "Lovelace"}
    assert body["MailingAddress"] == {"City": "London"}
    assert payload_of(update)["MailingAddress"] == {"City": "Paris"}
    changed = update["data"]["payload"]["ChangeEventHeader"]["changedFields"]
    assert sorted(changed) == ["LastModifiedDate", "MailingAddress.City"]


async def test_custom_change_channel_carries_its_objects(
    bayeux: Bayeux, org: OrgClient, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    reply = await bayeux.replies(bayeux.handshake_message())
    bayeux.client_id = reply[0]["clientId"]
    await bayeux.connect()
    refused = await bayeux.subscribe("/data/Sales__chn")
    assert refused["error"] == (
        "400::The channel you requested to subscribe to does not exist {/data/Sales__chn}"
    )
    defined = await control(
        http, emulator.url, "channels", {"name": "/data/Sales__chn", "entities": ["Opportunity"]}
    )
    assert defined.status == 200 and defined.body["name"] == "/data/Sales__chn"
    assert (await bayeux.subscribe("/data/Sales__chn"))["successful"]
    await org.create("Account", {"Name": "no"})
    deal = await org.create("Opportunity", {"Name": "Deal"})
    [event] = await bayeux.events()
    assert event["channel"] == "/data/Sales__chn"
    assert event["data"]["payload"]["ChangeEventHeader"]["recordIds"] == [deal]


async def test_bad_and_unknown_channel_names(bayeux: Bayeux) -> None:
    await bayeux.start()
    expected = {
        "/topic/AccountUpdates": (
            "400::The channel you requested to subscribe to does not exist {/topic/AccountUpdates}"
        ),
        "/u/Nothing": "400::The channel you requested to subscribe to does not exist {/u/Nothing}",
        "/event/NotAnEvent": (
            "400::The channel you requested to subscribe to does not exist {/event/NotAnEvent}"
        ),
        "data/AccountChangeEvent": "400::Channel subscriptions must start with a leading '/'",
        "": "400::Channel name not specified",
    }
    for channel, error in expected.items():
        reply = await bayeux.subscribe(channel)
        assert reply["successful"] is False, channel
        assert reply["error"] == error
        assert reply["subscription"] == channel


async def test_an_object_taken_out_of_change_data_capture_has_no_channel(
    bayeux: Bayeux, emulator: RunningEmulator, org: OrgClient
) -> None:
    await bayeux.start()
    taken = await control(org.http, emulator.url, "cdc", {"unselected": ["lead"]})
    assert taken.body == {"unselected": ["lead"]}
    refused = await bayeux.subscribe("/data/LeadChangeEvent")
    assert refused["successful"] is False
    assert refused["error"] == (
        "400::The channel you requested to subscribe to does not exist {/data/LeadChangeEvent}"
    )
    assert (await bayeux.subscribe("/data/AccountChangeEvent"))["successful"] is True
    await control(org.http, emulator.url, "cdc", {"unselected": []})
    assert (await bayeux.subscribe("/data/LeadChangeEvent"))["successful"] is True
    wrong = await control(org.http, emulator.url, "cdc", {"unselected": "Lead"})
    assert wrong.status == 400


async def test_pushtopic_reports_matching_records_with_selected_fields(
    bayeux: Bayeux, org: OrgClient, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    topic = {
        "Name": "BigDeals",
        "Query": "SELECT Id, Name, Amount FROM Opportunity WHERE Amount > 1000",
        "ApiVersion": 60.0,
        "NotifyForOperationCreate": True,
        "NotifyForOperationUpdate": True,
        "NotifyForOperationDelete": True,
        "NotifyForOperationUndelete": True,
        "NotifyForFields": "Referenced",
    }
    await org.create("PushTopic", topic)
    await bayeux.start("/topic/BigDeals")
    await org.create("Opportunity", {"Name": "small", "Amount": 10, "StageName": "New"})
    big = await org.create("Opportunity", {"Name": "big", "Amount": 5000, "StageName": "New"})
    await org.call("PATCH", f"sobjects/Opportunity/{big}", json={"StageName": "Won"})
    await org.call("PATCH", f"sobjects/Opportunity/{big}", json={"Amount": 6000})
    await org.call("DELETE", f"sobjects/Opportunity/{big}")
    await control(http, emulator.url, f"undelete/Opportunity/{big}", {})
    events = await bayeux.events()
    assert [e["channel"] for e in events] == ["/topic/BigDeals"] * 4
    kinds = [e["data"]["event"]["type"] for e in events]
    # The StageName change touches no field the query references: no event for it.
    assert kinds == ["created", "updated", "deleted", "undeleted"]
    created, updated, deleted, undeleted = (e["data"] for e in events)
    assert created["sobject"] == {"Id": big, "Name": "big", "Amount": 5000}
    assert updated["sobject"] == {"Id": big, "Name": "big", "Amount": 6000}
    assert deleted["sobject"] == {"Id": big}
    assert undeleted["sobject"]["Amount"] == 6000
    assert ISO_MS.fullmatch(created["event"]["createdDate"])
    assert list(created["event"]) == ["createdDate", "replayId", "type"]


async def test_pushtopic_filtered_subscription(bayeux: Bayeux, org: OrgClient) -> None:
    await org.create("PushTopic", {"Name": "Cases", "Query": "SELECT Id, Status FROM Case"})
    await bayeux.start("/topic/Cases?Status=Open")
    refused = await bayeux.subscribe("/topic/Cases?Priority=High")
    assert refused["error"] == "400::Query fields {Priority} do not exist on the topic entity"
    await org.create("Case", {"Status": "Closed"})
    open_case = await org.create("Case", {"Status": "Open"})
    [event] = await bayeux.events()
    assert event["channel"] == "/topic/Cases?Status=Open"
    assert event["data"]["sobject"] == {"Id": open_case, "Status": "Open"}


async def test_pushtopic_operations_and_deactivation(bayeux: Bayeux, org: OrgClient) -> None:
    topic_id = await org.create(
        "PushTopic",
        {
            "Name": "NewLeads",
            "Query": "SELECT Id, Company FROM Lead",
            "NotifyForOperationUpdate": False,
            "NotifyForFields": "All",
        },
    )
    await bayeux.start("/topic/NewLeads")
    lead = await org.create("Lead", {"Company": "Initech", "LastName": "Smith"})
    await org.call("PATCH", f"sobjects/Lead/{lead}", json={"Company": "Initrode"})
    [event] = await bayeux.events()
    assert event["data"]["event"]["type"] == "created"
    await org.call("PATCH", f"sobjects/PushTopic/{topic_id}", json={"IsActive": False})
    await org.create("Lead", {"Company": "Globex", "LastName": "Jones"})
    assert await bayeux.events() == []


async def test_platform_event_publish_and_delivery(
    bayeux: Bayeux, org: OrgClient, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await bayeux.start("/event/Low_Ink__e")
    published = await control(
        http,
        emulator.url,
        "events/Low_Ink__e",
        {"payload": {"Printer_Model__c": "XZO-5", "Ink_Percentage__c": 0.2}},
    )
    assert published.status == 200
    assert published.body["channel"] == "/event/Low_Ink__e"
    uuid.UUID(published.body["EventUuid"])
    # Publishing through REST, as an org allows, works too.
    created = await org.call("POST", "sobjects/Low_Ink__e", json={"Printer_Model__c": "B"})
    assert created.status == 201
    first, second = await bayeux.events()
    assert first["channel"] == "/event/Low_Ink__e"
    assert first["data"]["event"] == {
        "EventUuid": published.body["EventUuid"],
        "replayId": published.body["replayId"],
    }
    payload = first["data"]["payload"]
    assert ISO_MS.fullmatch(payload.pop("CreatedDate"))
    assert payload == {
        "CreatedById": ADMIN_USER_ID[:15],
        "Printer_Model__c": "XZO-5",
        "Ink_Percentage__c": 0.2,
    }
    assert isinstance(first["data"]["schema"], str)
    assert second["data"]["payload"]["Printer_Model__c"] == "B"
    assert second["data"]["event"]["replayId"] > first["data"]["event"]["replayId"]


async def test_generic_channel_via_control_and_rest_push(
    bayeux: Bayeux, org: OrgClient, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    defined = await control(http, emulator.url, "channels", {"name": "/u/Notifications"})
    channel_id = defined.body["id"]
    await bayeux.start("/u/Notifications")
    pushed = await control(
        http, emulator.url, "channels/push", {"channel": "/u/Notifications", "payload": "one"}
    )
    assert pushed.status == 200
    answer = await org.call(
        "POST",
        f"sobjects/StreamingChannel/{channel_id}/push",
        json={"pushEvents": [{"payload": "two", "userIds": []}]},
    )
    assert answer.status == 200
    assert answer.body == [{"fanoutCount": 1, "userOnlineStatus": {}}]
    first, second = await bayeux.events()
    assert first["channel"] == "/u/Notifications"
    assert first["data"]["payload"] == "one"
    assert first["data"]["event"]["replayId"] == pushed.body["replayId"]
    assert ISO_MS.fullmatch(first["data"]["event"]["createdDate"])
    assert list(first["data"]["event"]) == ["createdDate", "replayId"]
    assert second["data"]["payload"] == "two"


async def test_generic_channel_defined_as_a_streaming_channel_record(
    bayeux: Bayeux, org: OrgClient
) -> None:
    channel_id = await org.create("StreamingChannel", {"Name": "/u/Alerts"})
    await bayeux.start("/u/Alerts")
    answer = await org.call(
        "POST",
        f"sobjects/StreamingChannel/{channel_id}/push",
        json={"pushEvents": [{"payload": "hello", "userIds": []}]},
    )
    assert answer.status == 200
    [event] = await bayeux.events()
    assert event["data"]["payload"] == "hello"


async def test_gap_and_overflow_events_are_header_only(
    bayeux: Bayeux, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await bayeux.start("/data/AccountChangeEvent")
    ids = ["001EM0000000001AAA", "001EM0000000002AAA"]
    gap = await control(
        http,
        emulator.url,
        "gap",
        {"object": "Account", "record_ids": ids, "change_type": "GAP_UPDATE"},
    )
    assert gap.status == 200 and gap.body["channel"] == "/data/AccountChangeEvent"
    overflow = await control(
        http, emulator.url, "gap", {"object": "Account", "change_type": "GAP_OVERFLOW"}
    )
    assert overflow.status == 200
    first, second = await bayeux.events()
    for event, change_type, record_ids in (
        (first, "GAP_UPDATE", ids),
        (second, "GAP_OVERFLOW", []),
    ):
        assert payload_of(event) == {}
        header = event["data"]["payload"]["ChangeEventHeader"]
        assert header["changeType"] == change_type
        assert header["recordIds"] == record_ids
        assert header["sequenceNumber"] == 1
        assert header["changedFields"] == [] and header["nulledFields"] == []
    assert first["data"]["event"]["replayId"] == gap.body["replayId"]
    refused = await control(
        http, emulator.url, "gap", {"object": "Account", "change_type": "UPDATE"}
    )
    assert refused.status == 400
