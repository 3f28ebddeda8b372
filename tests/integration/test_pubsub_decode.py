"""The same events read over CometD and over Pub/Sub from the emulator: the Pub/Sub payload,
decoded by `decode_payload` with the schema GetSchema gives, is the CometD payload."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest

from emulator.tests.pubsub_helpers import PubSubClient, auth_metadata
from emulator.tests.streaming_helpers import Bayeux, cookie_jar
from sftriggerd.salesforce.pubsub import pubsub_api_pb2 as pb
from sftriggerd.salesforce.pubsub.bitmaps import BITMAP_FIELDS
from sftriggerd.salesforce.pubsub.decode import SchemaCache, decode_payload
from sftriggerd_emulator.context import EmulatorSettings
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient, control


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    return EmulatorSettings(state_dir=tmp_path / "org", pubsub_port=0, cometd_timeout_ms=1500)


@pytest.fixture
async def pubsub(emulator: RunningEmulator, org: OrgClient) -> AsyncIterator[PubSubClient]:
    async with grpc.aio.insecure_channel(emulator.pubsub_address) as channel:
        yield PubSubClient(channel, auth_metadata(emulator, org.token))


async def both_sides(
    emulator: RunningEmulator, org: OrgClient, pubsub: PubSubClient, channel: str, count: int
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(CometD payload, decoded Pub/Sub payload) of the first `count` events of `channel`."""
    async with aiohttp.ClientSession(cookie_jar=cookie_jar()) as session:
        bayeux = Bayeux(session, emulator.url, org.token)
        await bayeux.start(channel, replay=-2)
        cometd: list[dict[str, Any]] = []
        while len(cometd) < count:
            cometd += [event["data"]["payload"] for event in await bayeux.events()]
    request = pb.FetchRequest(topic_name=channel, num_requested=count, replay_preset=pb.EARLIEST)
    events = await pubsub.subscribe(request).events(count)
    cache = SchemaCache()
    decoded = []
    for event in events:
        schema_id = event.event.schema_id
        decoder = cache.get(schema_id)
        if decoder is None:
            info = await pubsub.channel.unary_unary(
                "/eventbus.v1.PubSub/GetSchema",
                request_serializer=pb.SchemaRequest.SerializeToString,
                response_deserializer=pb.SchemaInfo.FromString,
            )(pb.SchemaRequest(schema_id=schema_id), metadata=pubsub.metadata)
            assert isinstance(info, pb.SchemaInfo)
            decoder = cache.add(schema_id, info.schema_json)
            assert decode_payload(info.schema_json, event.event.payload) == decoder.decode(
                event.event.payload
            )
        decoded.append(decoder.decode(event.event.payload))
    return list(zip(cometd[:count], decoded, strict=True))


def field_lists_sorted(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with its header's field lists sorted: a bitmap keeps no order, and CometD
    lists fields in the order of the change."""
    header = payload.get("ChangeEventHeader")
    if not isinstance(header, dict):
        return payload
    lists = {key: sorted(header[key]) for key in BITMAP_FIELDS if key in header}
    return {**payload, "ChangeEventHeader": {**header, **lists}}


def assert_same(decoded: dict[str, Any], cometd: dict[str, Any]) -> None:
    assert field_lists_sorted(decoded) == field_lists_sorted(cometd)


async def test_account_changes_decode_to_the_cometd_payload(
    emulator: RunningEmulator, org: OrgClient, pubsub: PubSubClient
) -> None:
    record_id = await org.create(
        "Account",
        {"Name": "Acme", "BillingCity": "Paris", "BillingStreet": "1 Rue", "Phone": "555"},
    )
    patch = {"BillingCity": None, "Name": "Acme 2", "Phone": None}
    answer = await org.call("PATCH", f"sobjects/Account/{record_id}", json=patch)
    assert answer.status == 204, answer.body
    pairs = await both_sides(emulator, org, pubsub, "/data/AccountChangeEvent", 2)
    for cometd, decoded in pairs:
        assert_same(decoded, cometd)
    update = pairs[1][1]
    header = update["ChangeEventHeader"]
    assert header["changeType"] == "UPDATE"
    assert sorted(header["nulledFields"]) == ["BillingAddress.City", "Phone"]
    assert update["BillingAddress"] == {"City": None} and update["Phone"] is None
    assert "Name" in header["changedFields"] and isinstance(update["LastModifiedDate"], str)
    assert "BillingAddress" in pairs[0][1] and pairs[0][1]["BillingAddress"]["City"] == "Paris"


async def test_names_and_dates_decode_to_the_cometd_payload(
    emulator: RunningEmulator, org: OrgClient, pubsub: PubSubClient
) -> None:
    contact = await org.create("Contact", {"FirstName": "Ada", "LastName": "King"})
    answer = await org.call("PATCH", f"sobjects/Contact/{contact}", json={"FirstName": "Augusta"})
    assert answer.status == 204, answer.body
    await org.create("Opportunity", {"Name": "Deal", "StageName": "New", "CloseDate": "2026-12-24"})
    contacts = await both_sides(emulator, org, pubsub, "/data/ContactChangeEvent", 2)
    for cometd, decoded in contacts:
        assert_same(decoded, cometd)
    assert contacts[0][1]["Name"] == {"FirstName": "Ada", "LastName": "King"}
    assert "Name.FirstName" in contacts[1][1]["ChangeEventHeader"]["changedFields"]
    [(cometd, decoded)] = await both_sides(emulator, org, pubsub, "/data/OpportunityChangeEvent", 1)
    assert_same(decoded, cometd)
    assert decoded["CloseDate"] == "2026-12-24"


async def test_a_platform_event_decodes_to_the_cometd_payload(
    emulator: RunningEmulator, org: OrgClient, pubsub: PubSubClient
) -> None:
    answer = await control(
        org.http, emulator.url, "events/Order__e", {"payload": {"Amount__c": 5.5, "Note__c": None}}
    )
    assert answer.status == 200, answer.body
    [(cometd, decoded)] = await both_sides(emulator, org, pubsub, "/event/Order__e", 1)
    assert_same(decoded, cometd)
    assert decoded["CreatedDate"].endswith("Z") and decoded["Amount__c"] == 5.5
