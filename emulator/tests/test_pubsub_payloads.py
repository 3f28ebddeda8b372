"""What Pub/Sub subscribers receive: Avro records decoded with the schema GetSchema gives,
bitmaps that read back as field names, and the same change as CometD subscribers see."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import grpc
import pytest

from emulator.tests.pubsub_helpers import PubSubClient, auth_metadata, field_names
from emulator.tests.streaming_helpers import Bayeux, cookie_jar
from sftriggerd.salesforce.pubsub import pubsub_api_pb2 as pb
from sftriggerd_emulator.context import EmulatorSettings
from sftriggerd_emulator.pubsub.bitmaps import field_bitmaps, hex_bitmap
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient, control


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    return EmulatorSettings(
        state_dir=tmp_path / "org", pubsub_port=0, cometd_timeout_ms=1500, pubsub_keepalive_s=1
    )


@pytest.fixture
async def pubsub(emulator: RunningEmulator, org: OrgClient) -> AsyncIterator[PubSubClient]:
    async with grpc.aio.insecure_channel(emulator.pubsub_address) as channel:
        yield PubSubClient(channel, auth_metadata(emulator, org.token))


@pytest.fixture
async def bayeux(emulator: RunningEmulator, org: OrgClient) -> AsyncIterator[Bayeux]:
    async with aiohttp.ClientSession(cookie_jar=cookie_jar()) as session:
        yield Bayeux(session, emulator.url, org.token)


def earliest(topic: str, n: int = 10) -> pb.FetchRequest:
    return pb.FetchRequest(topic_name=topic, num_requested=n, replay_preset=pb.EARLIEST)


def test_bitmaps_follow_the_documented_reading() -> None:
    # Salesforce's worked example reads '0x650004E0' as the fields at the set bit positions.
    value = 0x650004E0
    positions = [i for i in range(32) if value >> i & 1]
    assert hex_bitmap(positions) == "0x650004E0"
    assert hex_bitmap([]) == "0x00"
    schema = {"fields": [{"name": f"F{i}", "type": "string"} for i in range(32)]}
    assert field_names(["0x650004E0"], schema) == [f"F{i}" for i in positions]


def test_compound_fields_get_their_own_bitmap_element() -> None:
    class F:
        def __init__(self, name: str, parts: tuple[str, ...] = ()) -> None:
            self.name, self.parts = name, parts

    body = [F("Name"), F("BillingAddress", ("Street", "City")), F("Phone")]
    paths = ["Phone", "BillingAddress.City", "Unknown", "Name"]
    assert field_bitmaps(paths, body) == ["0x0A", "2-0x02"]
    assert field_bitmaps(["BillingAddress.City"], body) == ["2-0x02"]
    assert field_bitmaps([], body) == []


async def test_a_change_reads_the_same_on_both_sides(
    pubsub: PubSubClient, bayeux: Bayeux, org: OrgClient
) -> None:
    await bayeux.start("/data/AccountChangeEvent")
    subscriber = pubsub.subscribe(
        pb.FetchRequest(topic_name="/data/AccountChangeEvent", num_requested=5)
    )
    await subscriber.next()  # the first keepalive: the stream is open
    record_id = await org.create(
        "Account", {"Name": "Acme", "BillingCity": "Paris", "BillingStreet": "1 Rue", "Rating": 3}
    )
    patch = {"BillingCity": None, "Name": "Acme 2"}
    answer = await org.call("PATCH", f"sobjects/Account/{record_id}", json=patch)
    assert answer.status == 204, answer.body
    cometd = [event["data"] for event in await bayeux.events()]
    while len(cometd) < 2:
        cometd += [event["data"] for event in await bayeux.events()]
    events = await subscriber.events(2)
    for data, event in zip(cometd, events, strict=True):
        record, schema = await pubsub.decode(event)
        cometd_header = data["payload"]["ChangeEventHeader"]
        header = record["ChangeEventHeader"]
        for key in ("entityName", "recordIds", "changeType", "changeOrigin", "transactionKey"):
            assert header[key] == cometd_header[key], key
        for key in ("sequenceNumber", "commitTimestamp", "commitNumber", "commitUser"):
            assert header[key] == cometd_header[key], key
        for key in ("changedFields", "nulledFields", "diffFields"):
            assert sorted(field_names(header[key], schema)) == sorted(cometd_header[key]), key
        body = {k: v for k, v in data["payload"].items() if k != "ChangeEventHeader"}
        for name, value in body.items():
            decoded = record[name]
            if isinstance(value, dict):
                assert {k: decoded[k] for k in value} == value, name
            elif name.endswith("Date"):
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
                assert decoded == int(moment.timestamp() * 1000), name
            else:
                assert decoded == value, name
        # The same place in the stream on both sides.
        position = int.from_bytes(event.replay_id[3 : 3 + event.replay_id[0]], "big")
        assert position == data["event"]["replayId"]
    update = (await pubsub.decode(events[1]))[0]["ChangeEventHeader"]
    assert update["changeType"] == "UPDATE"
    assert (
        update["nulledFields"] == [update["nulledFields"][0]] and "-0x" in update["nulledFields"][0]
    )


async def test_schema_fields_are_nullable_and_compounds_nest(
    pubsub: PubSubClient, org: OrgClient
) -> None:
    await org.create(
        "Contact", {"FirstName": "Ada", "LastName": "King", "MailingCity": "London", "Age__c": 36}
    )
    [event] = await pubsub.subscribe(earliest("/data/ContactChangeEvent")).events(1)
    record, schema = await pubsub.decode(event)
    assert record["Name"]["FirstName"] == "Ada" and record["Name"]["LastName"] == "King"
    assert record["MailingAddress"]["City"] == "London"
    assert record["Age__c"] == 36.0
    by_name = {field["name"]: field for field in schema["fields"]}
    for name in ("Name", "MailingAddress", "Age__c", "CreatedDate"):
        assert by_name[name]["type"][0] == "null" and by_name[name]["default"] is None
    assert by_name["CreatedDate"]["type"] == ["null", "long"]
    assert "Id" not in by_name and "SystemModstamp" not in by_name
    assert record["ChangeEventHeader"]["changedFields"] == []
    # The schema id is a fingerprint: a second event of the same shape shares it.
    await org.create(
        "Contact", {"FirstName": "Bo", "LastName": "Li", "MailingCity": "X", "Age__c": 1}
    )
    events = await pubsub.subscribe(earliest("/data/ContactChangeEvent")).events(2)
    assert events[0].event.schema_id == events[1].event.schema_id == event.event.schema_id


async def test_platform_events_carry_their_uuid_and_fields(
    pubsub: PubSubClient, emulator: RunningEmulator, org: OrgClient
) -> None:
    answer = await control(
        org.http, emulator.url, "events/Order__e", {"payload": {"Amount__c": 5, "Note__c": "hi"}}
    )
    [event] = await pubsub.subscribe(earliest("/event/Order__e")).events(1)
    assert event.event.id == answer.body["EventUuid"]
    record, schema = await pubsub.decode(event)
    assert schema["name"] == "Order__e"
    assert schema["fields"][0] == {
        "name": "CreatedDate",
        "type": "long",
        "doc": "CreatedDate:DateTime",
    }
    assert record["Amount__c"] == 5.0 and record["Note__c"] == "hi"
    assert abs(record["CreatedDate"] / 1000 - datetime.now(UTC).timestamp()) < 60


async def test_a_hostile_raw_event_still_encodes(
    pubsub: PubSubClient, emulator: RunningEmulator, org: OrgClient
) -> None:
    data = {
        "payload": {
            "ChangeEventHeader": {"entityName": 7, "changeType": "WEIRD", "recordIds": "x"},
            "Name": {"nested": [1, 2]},
            "bad key": 1,
            "Flag__c": True,
        }
    }
    answer = await control(
        org.http, emulator.url, "publish", {"channel": "/data/AccountChangeEvent", "data": data}
    )
    assert answer.status == 200, answer.body
    [event] = await pubsub.subscribe(earliest("/data/AccountChangeEvent")).events(1)
    record, _ = await pubsub.decode(event)
    assert record["ChangeEventHeader"]["changeType"] == "WEIRD"
    assert record["ChangeEventHeader"]["recordIds"] == []
    assert record["Flag__c"] is True and "bad key" not in record


async def test_change_events_are_written_with_the_schema_get_topic_names(
    pubsub: PubSubClient, org: OrgClient
) -> None:
    """Salesforce writes a topic's change events with the topic's current schema, so a client
    may fetch it once from GetTopic (its ChangeType is the enum the events carry)."""
    await org.create("Account", {"Name": "Acme"})
    await org.create("Account", {"Name": "Globex", "Industry": "Energy"})
    topic = await pubsub.get_topic("/data/AccountChangeEvent")
    subscriber = pubsub.subscribe(earliest("/data/AccountChangeEvent"))
    events = await subscriber.events(2)
    await subscriber.call.done_writing()
    subscriber.call.cancel()
    assert {event.event.schema_id for event in events} == {topic.schema_id}
    schema = await pubsub.get_schema(topic.schema_id)
    header = {f["name"]: f["type"] for f in schema["fields"][0]["type"]["fields"]}
    assert header["changeType"]["type"] == "enum" and "CREATE" in header["changeType"]["symbols"]
