"""The emulator's Pub/Sub API over the wire: auth, topics, presets, replay, flow control,
keepalives and idle close, with a real grpc.aio client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest

from emulator.tests.pubsub_helpers import PubSubClient, Subscriber, auth_metadata, error_code
from sftriggerd.salesforce.pubsub import pubsub_api_pb2 as pb
from sftriggerd_emulator.context import EmulatorSettings
from sftriggerd_emulator.identity import ORG_ID
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient, control

KEEPALIVE_S = 0.4
IDLE_CLOSE_S = 0.6
PREFIX = "sfdc.platform.eventbus.grpc."


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    return EmulatorSettings(
        state_dir=tmp_path / "org",
        pubsub_port=0,
        pubsub_keepalive_s=KEEPALIVE_S,
        pubsub_idle_close_s=IDLE_CLOSE_S,
    )


@pytest.fixture
async def channel(emulator: RunningEmulator) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(emulator.pubsub_address) as opened:
        yield opened


@pytest.fixture
def pubsub(emulator: RunningEmulator, org: OrgClient, channel: grpc.aio.Channel) -> PubSubClient:
    return PubSubClient(channel, auth_metadata(emulator, org.token))


def first(topic: str, n: int = 10, preset: int = pb.LATEST, replay: bytes = b"") -> pb.FetchRequest:
    return pb.FetchRequest(
        topic_name=topic, num_requested=n, replay_preset=preset, replay_id=replay
    )


async def open_latest(
    pubsub: PubSubClient, topic: str, n: int = 10
) -> tuple[Subscriber, pb.FetchResponse]:
    """Subscribes at LATEST and waits for the first keepalive, so the stream is surely open."""
    subscriber = pubsub.subscribe(first(topic, n))
    return subscriber, await subscriber.next()


async def test_get_topic_for_change_and_platform_event_topics(
    pubsub: PubSubClient, org: OrgClient
) -> None:
    await org.create("Account", {"Name": "Acme"})
    info = await pubsub.get_topic("/data/AccountChangeEvent")
    assert info.topic_name == "/data/AccountChangeEvent"
    assert info.tenant_guid == ORG_ID and info.can_subscribe and not info.can_publish
    assert len(info.schema_id) == 22
    schema = await pubsub.get_schema(info.schema_id)
    assert schema["name"] == "AccountChangeEvent"
    assert schema["namespace"] == "com.sforce.eventbus"
    assert schema["fields"][0]["name"] == "ChangeEventHeader"
    header_fields = [f["name"] for f in schema["fields"][0]["type"]["fields"]]
    assert header_fields == [
        "entityName",
        "recordIds",
        "changeType",
        "changeOrigin",
        "transactionKey",
        "sequenceNumber",
        "commitTimestamp",
        "commitNumber",
        "commitUser",
        "nulledFields",
        "diffFields",
        "changedFields",
    ]
    assert (await pubsub.get_topic("/data/AccountChangeEvent")).schema_id == info.schema_id
    event_topic = await pubsub.get_topic("/event/Order__e")
    assert event_topic.can_subscribe and event_topic.can_publish
    assert (await pubsub.get_topic("/data/ChangeEvents")).schema_id == ""


@pytest.mark.parametrize("name", ["/topic/Invoices", "/u/Notifications", "/data/Nope__chn", "x"])
async def test_pushtopics_generic_and_unknown_channels_are_no_topics(
    pubsub: PubSubClient, emulator: RunningEmulator, org: OrgClient, name: str
) -> None:
    await control(org.http, emulator.url, "channels", {"name": "/u/Notifications"})
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await pubsub.get_topic(name)
    assert raised.value.code() is grpc.StatusCode.NOT_FOUND
    assert error_code(raised.value) == PREFIX + "topic.not.found"
    assert "rpcId: " in (raised.value.details() or "")
    error = await pubsub.subscribe(first(name)).error()
    assert error_code(error) == PREFIX + "topic.not.found"


async def test_missing_and_dead_credentials_are_unauthenticated(
    emulator: RunningEmulator, org: OrgClient, channel: grpc.aio.Channel
) -> None:
    blank = PubSubClient(channel, (("accesstoken", org.token), ("instanceurl", emulator.url)))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await blank.get_topic("/data/ChangeEvents")
    assert raised.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert error_code(raised.value) == PREFIX + "service.auth.headers.invalid"
    for metadata in (
        auth_metadata(emulator, "00D!unknown"),
        (("accesstoken", org.token), ("instanceurl", emulator.url), ("tenantid", "00Dxx")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await PubSubClient(channel, metadata).get_topic("/data/ChangeEvents")
        assert raised.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert error_code(raised.value) == PREFIX + "service.auth.error"
    # A session expired by the org ends an open stream the same way.
    live = PubSubClient(channel, auth_metadata(emulator, org.token))
    subscriber = live.subscribe(first("/data/ChangeEvents"))
    await subscriber.next()
    await control(org.http, emulator.url, "sessions/expire", {"access_token": org.token})
    error = await subscriber.error()
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert error_code(error) == PREFIX + "service.auth.error"


async def test_latest_gets_only_what_comes_next_and_earliest_everything(
    pubsub: PubSubClient, org: OrgClient
) -> None:
    old = await org.create("Account", {"Name": "Before"})
    subscriber, keepalive = await open_latest(pubsub, "/data/AccountChangeEvent")
    assert not keepalive.events and keepalive.latest_replay_id
    new = await org.create("Account", {"Name": "After"})
    [event] = await subscriber.events(1)
    record, _ = await pubsub.decode(event)
    assert record["ChangeEventHeader"]["recordIds"] == [new]
    earliest = pubsub.subscribe(first("/data/AccountChangeEvent", preset=pb.EARLIEST))
    events = await earliest.events(2)
    ids = [(await pubsub.decode(e))[0]["ChangeEventHeader"]["recordIds"] for e in events]
    assert ids == [[old], [new]]
    assert events[1].replay_id == event.replay_id


async def test_custom_replay_starts_after_the_given_event(
    pubsub: PubSubClient, org: OrgClient
) -> None:
    ids = [await org.create("Contact", {"LastName": f"L{n}"}) for n in range(4)]
    events = await pubsub.subscribe(first("/data/ContactChangeEvent", preset=pb.EARLIEST)).events(4)
    lengths = {len(event.replay_id) for event in events}
    assert len(lengths) > 1, "replay ids should not all have one length"
    resumed = pubsub.subscribe(
        first("/data/ContactChangeEvent", 10, pb.CUSTOM, events[1].replay_id)
    )
    later = await resumed.events(2)
    assert [e.replay_id for e in later] == [e.replay_id for e in events[2:]]
    record, _ = await pubsub.decode(later[0])
    assert record["ChangeEventHeader"]["recordIds"] == [ids[2]]
    # A replay id names a place in the change stream, whichever change topic hands it out.
    shared = pubsub.subscribe(first("/data/ChangeEvents", 10, pb.CUSTOM, events[2].replay_id))
    assert [e.replay_id for e in await shared.events(1)] == [events[3].replay_id]
    # Preset and replay id of later requests are ignored.
    await resumed.send(first("", 5, pb.EARLIEST))
    await org.create("Contact", {"LastName": "Next"})
    [newest] = await resumed.events(1)
    assert (await pubsub.decode(newest))[0]["Name"]["LastName"] == "Next"


async def test_replay_ids_outside_retention_or_damaged_are_refused(
    pubsub: PubSubClient, org: OrgClient, emulator: RunningEmulator
) -> None:
    for n in range(3):
        await org.create("Account", {"Name": f"A{n}"})
    events = await pubsub.subscribe(first("/data/ChangeEvents", preset=pb.EARLIEST)).events(3)
    position = int.from_bytes(events[2].replay_id[3 : 3 + events[2].replay_id[0]], "big")
    await control(org.http, emulator.url, "retention", {"drop_before_replay_id": position})
    expired = await pubsub.subscribe(
        first("/data/ChangeEvents", 5, pb.CUSTOM, events[0].replay_id)
    ).error()
    assert expired.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error_code(expired) == PREFIX + "subscription.fetch.replayid.corrupted"
    damaged = events[2].replay_id[:-1] + bytes([events[2].replay_id[-1] ^ 1])
    for replay in (damaged, b"\x00" * 8, events[2].replay_id + b"\x01"):
        error = await pubsub.subscribe(first("/data/ChangeEvents", 5, pb.CUSTOM, replay)).error()
        assert error_code(error) == PREFIX + "subscription.fetch.replayid.corrupted"
    missing = await pubsub.subscribe(first("/data/ChangeEvents", 5, pb.CUSTOM)).error()
    assert error_code(missing) == PREFIX + "subscription.fetch.replayid.validation.failed"
    # The newest retained position still serves, and so does the newest position after
    # retention dropped everything (what keepalives hand out).
    kept = pubsub.subscribe(first("/data/ChangeEvents", 5, pb.CUSTOM, events[2].replay_id))
    assert not (await kept.next()).events
    await control(org.http, emulator.url, "retention", {"drop_before_replay_id": position + 1})
    resumed = pubsub.subscribe(first("/data/ChangeEvents", 5, pb.CUSTOM, events[2].replay_id))
    keepalive = await resumed.next()
    assert keepalive.latest_replay_id == events[2].replay_id


async def test_at_most_100_requested_and_pending_counts(
    pubsub: PubSubClient, org: OrgClient
) -> None:
    await org.create_many("Lead", [{"LastName": f"L{n}", "Company": "C"} for n in range(150)])
    subscriber = pubsub.subscribe(first("/data/LeadChangeEvent", 3, pb.EARLIEST))
    response = await subscriber.next()
    assert len(response.events) == 3 and response.pending_num_requested == 0
    await subscriber.fetch(5000)
    delivered: list[pb.ConsumerEvent] = []
    pending = []
    while len(delivered) < 100:
        response = await subscriber.next()
        delivered += response.events
        pending.append(response.pending_num_requested)
    assert len(delivered) == 100 and pending[-1] == 0
    assert pending == sorted(pending, reverse=True)
    quiet = await subscriber.next()
    assert not quiet.events and quiet.pending_num_requested == 0
    for asked in (0, -1):
        error = await pubsub.subscribe(first("/data/LeadChangeEvent", asked)).error()
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert error_code(error) == PREFIX + "subscription.fetch.requested.events.invalid"


async def test_a_later_request_for_another_topic_ends_the_stream(pubsub: PubSubClient) -> None:
    subscriber = pubsub.subscribe(first("/data/AccountChangeEvent"))
    await subscriber.fetch(1, topic="/data/ContactChangeEvent")
    error = await subscriber.error()
    assert error_code(error) == PREFIX + "subscription.fetch.topic.mismatch"


async def test_keepalives_carry_the_newest_replay_id(pubsub: PubSubClient, org: OrgClient) -> None:
    subscriber = pubsub.subscribe(first("/data/AccountChangeEvent", 50))
    loop = asyncio.get_running_loop()
    started = loop.time()
    first_keepalive = await subscriber.next()
    second = await subscriber.next()
    assert loop.time() - started >= KEEPALIVE_S
    assert not second.events and second.pending_num_requested == 50
    # Another object's change moves the newest position of this topic's stream too.
    await org.create("Contact", {"LastName": "Elsewhere"})
    third = await subscriber.next()
    assert not third.events and third.latest_replay_id != first_keepalive.latest_replay_id
    resumed = pubsub.subscribe(
        first("/data/AccountChangeEvent", 5, pb.CUSTOM, third.latest_replay_id)
    )
    assert not (await resumed.next()).events


async def test_a_stream_with_nothing_requested_is_closed(
    pubsub: PubSubClient, org: OrgClient
) -> None:
    await org.create("Account", {"Name": "One"})
    subscriber = pubsub.subscribe(first("/data/AccountChangeEvent", 1, pb.EARLIEST))
    assert len((await subscriber.next()).events) == 1
    loop = asyncio.get_running_loop()
    drained = loop.time()
    while (response := await subscriber.read()) is not grpc.aio.EOF:
        assert isinstance(response, pb.FetchResponse) and not response.events
    assert loop.time() - drained >= IDLE_CLOSE_S * 0.9
    assert await subscriber.call.code() is grpc.StatusCode.OK
    # One that keeps asking stays open past the idle time.
    kept = pubsub.subscribe(first("/data/AccountChangeEvent", 1))
    await asyncio.sleep(IDLE_CLOSE_S * 1.5)
    await org.create("Account", {"Name": "Two"})
    assert len(await kept.events(1)) == 1


async def test_control_shows_open_streams(
    pubsub: PubSubClient, org: OrgClient, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    subscriber = pubsub.subscribe(first("/event/Order__e", 7))
    await subscriber.next()
    shown = await control(http, emulator.url, "pubsub")
    [stream] = shown.body["streams"]
    assert stream["topic"] == "/event/Order__e" and stream["pending_num_requested"] == 7
    await pubsub.subscribe(first("/topic/Nope")).error()
    stats = (await control(http, emulator.url, "stats")).body
    assert stats["pubsub_subscribes"] == 1 and stats["pubsub_keepalives"] >= 1
    assert stats["pubsub_errors"] == 1
