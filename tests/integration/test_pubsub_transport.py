"""The Pub/Sub transport against the emulator's Pub/Sub API: flow control, the watchdog,
keepalive positions, and the outcome each error code of Salesforce becomes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from sftriggerd.metrics import Metrics
from sftriggerd.salesforce.client import SalesforceClient
from sftriggerd.salesforce.pubsub.client import PubSubClient
from sftriggerd.sources.pubsub_transport import PubSubTransport
from sftriggerd.sources.transport import (
    ChannelUnavailable,
    Reauthenticate,
    Received,
    Reconnect,
    ReplayExpired,
    Stalled,
    StartAt,
    TransportFailure,
    TransportOutcome,
)
from sftriggerd_emulator.context import EmulatorSettings
from tests.integration.polling_rig import wire
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient, control

CHANNEL = "/data/AccountChangeEvent"
KEEPALIVE_S, STALL_MARGIN_S = 0.5, 0.5
PREFIX = "sfdc.platform.eventbus.grpc."


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    return EmulatorSettings(
        state_dir=tmp_path / "org", pubsub_port=0, pubsub_keepalive_s=KEEPALIVE_S
    )


@pytest.fixture
async def client(
    emulator: RunningEmulator, http: aiohttp.ClientSession, tmp_path: Path
) -> AsyncIterator[SalesforceClient]:
    store, made, _ = await wire(emulator.url, http, tmp_path, Metrics(), None)
    yield made
    await store.close()


@pytest.fixture
async def pubsub(
    emulator: RunningEmulator, client: SalesforceClient
) -> AsyncIterator[PubSubClient]:
    made = PubSubClient(client.session, f"http://{emulator.pubsub_address}")
    yield made
    await made.close()


def transport(pubsub: PubSubClient, batch_size: int = 100) -> PubSubTransport:
    return PubSubTransport(
        pubsub,
        CHANNEL,
        batch_size=batch_size,
        keepalive_s=KEEPALIVE_S,
        stall_margin_s=STALL_MARGIN_S,
        settle_s=0.3,
    )


async def post(
    http: aiohttp.ClientSession, emulator: RunningEmulator, path: str, body: dict[str, object]
) -> None:
    answer = await control(http, emulator.url, path, body)
    assert answer.status == 200, answer.body


async def receive_events(subject: PubSubTransport, count: int) -> list[Received]:
    items: list[Received] = []
    async with asyncio.timeout(10):
        while len(items) < count:
            items.extend(await subject.receive())
    return items


def delivered(emulator: RunningEmulator) -> int:
    return emulator.ctx.stats["pubsub_events_delivered"]


async def pending_on_the_server(http: aiohttp.ClientSession, emulator: RunningEmulator) -> int:
    answer = await control(http, emulator.url, "pubsub", None)
    [stream] = answer.body["streams"]
    pending: int = stream["pending_num_requested"]
    return pending


async def test_the_next_batch_is_asked_for_only_when_receive_is_called_again(
    pubsub: PubSubClient, org: OrgClient, http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    for n in range(12):
        await org.create("Account", {"Name": f"Kept {n}"})
    subject = transport(pubsub, batch_size=5)
    await subject.open()
    try:
        await subject.subscribe(StartAt.RETAINED)
        assert subject.requests_sent == 1 and subject.outstanding == 5
        first = await receive_events(subject, 5)
        assert len(first) == 5 and subject.outstanding == 0
        # The loop is storing the batch: nothing more is asked for, nothing more comes.
        await asyncio.sleep(3 * KEEPALIVE_S)
        assert subject.requests_sent == 1 and delivered(emulator) == 5
        assert await pending_on_the_server(http, emulator) == 0
        second = await receive_events(subject, 5)
        assert subject.requests_sent == 2 and delivered(emulator) == 10
        third = await receive_events(subject, 2)
        assert subject.requests_sent == 3 and subject.outstanding == 3
        positions = [item.position for item in first + second + third]
        assert len(set(positions)) == 12 and all(isinstance(p, bytes) for p in positions)
    finally:
        await subject.close()


async def test_a_silent_stream_raises_stalled_and_a_new_session_resumes_after_the_last(
    pubsub: PubSubClient, org: OrgClient, http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    subject = transport(pubsub)
    await subject.open()
    try:
        await subject.subscribe(StartAt.NEW)
        await org.create("Account", {"Name": "Before the silence"})
        [seen] = await receive_events(subject, 1)
        await post(http, emulator, "pubsub/silence", {"enabled": True})
        missed = await org.create("Account", {"Name": "During the silence"})
        with pytest.raises(Stalled):
            async with asyncio.timeout(10):
                while True:
                    await subject.receive()
    finally:
        await subject.close()
    await post(http, emulator, "pubsub/silence", {"enabled": False})
    again = transport(pubsub)
    await again.open()
    try:
        assert seen.position is not None
        await again.subscribe(seen.position)
        [item] = await receive_events(again, 1)
        assert item.readable_payload() is not None
        header = (item.payload or {})["ChangeEventHeader"]  # type: ignore[index]
        assert header["recordIds"] == [missed]
    finally:
        await again.close()


async def test_keepalives_hand_over_the_position_the_idle_stream_has_passed(
    pubsub: PubSubClient, org: OrgClient
) -> None:
    subject = transport(pubsub)
    await subject.open()
    try:
        await subject.subscribe(StartAt.NEW)
        assert subject.idle_position() is None
        first = await _next_idle_position(subject)
        # Changes of another object move the shared change stream past this topic's events.
        await org.create("Contact", {"LastName": "Elsewhere"})
        moved = await _next_idle_position(subject, other_than=first)
        assert moved != first and subject.resumable(moved)
        await org.create("Account", {"Name": "Here"})
        [item] = await receive_events(subject, 1)
        assert subject.idle_position() is None  # a receive with events names no idle position
        assert item.position is not None
    finally:
        await subject.close()


async def _next_idle_position(subject: PubSubTransport, other_than: bytes | None = None) -> bytes:
    async with asyncio.timeout(10):
        while True:
            assert await subject.receive() == []
            position = subject.idle_position()
            if position is not None and position != other_than:
                return position


@pytest.mark.parametrize(
    ("status", "code", "match", "expected", "shown"),
    [
        ("UNAUTHENTICATED", "service.auth.error", "Subscribe", Reauthenticate, "auth.error"),
        (
            "RESOURCE_EXHAUSTED",
            "concurrent.client.limit.exceeded",
            "Subscribe",
            TransportFailure,
            "RESOURCE_EXHAUSTED sfdc.platform.eventbus.grpc.concurrent.client.limit.exceeded",
        ),
        ("UNAVAILABLE", "service.unavailable", "Subscribe", TransportFailure, "UNAVAILABLE"),
        ("NOT_FOUND", "topic.not.found", "GetTopic", ChannelUnavailable, "topic.not.found"),
        ("PERMISSION_DENIED", "", "GetTopic", ChannelUnavailable, "PERMISSION_DENIED"),
        ("INTERNAL", "subscription.internal.error", "Subscribe", TransportFailure, "INTERNAL"),
    ],
)
async def test_each_refusal_of_a_subscribe_becomes_its_outcome(
    pubsub: PubSubClient,
    http: aiohttp.ClientSession,
    emulator: RunningEmulator,
    status: str,
    code: str,
    match: str,
    expected: type[TransportOutcome],
    shown: str,
) -> None:
    await post(
        http,
        emulator,
        "pubsub/fail",
        {"status": status, "error_code": PREFIX + code if code else "", "match": match},
    )
    subject = transport(pubsub)
    await subject.open()
    try:
        with pytest.raises(expected) as raised:
            await subject.subscribe(StartAt.NEW)
        assert type(raised.value) is expected and shown in str(raised.value)
        await subject.subscribe(StartAt.NEW)  # the fault was for one call: the next works
    finally:
        await subject.close()


async def test_a_corrupted_replay_id_is_expired_only_for_a_stored_position(
    pubsub: PubSubClient, http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    body: dict[str, object] = {"status": "INVALID_ARGUMENT", "match": "Subscribe"}
    subject = transport(pubsub)
    await subject.open()
    try:
        corrupted = PREFIX + "subscription.fetch.replayid.corrupted"
        await post(http, emulator, "pubsub/fail", {**body, "error_code": corrupted})
        with pytest.raises(TransportFailure):
            await subject.subscribe(StartAt.RETAINED)
        with pytest.raises(ReplayExpired, match=r"replayid\.corrupted"):
            await subject.subscribe(b"\x00\x01\x02\x03\x04")  # not of this stream
    finally:
        await subject.close()


async def test_a_dropped_stream_raises_reconnect(
    pubsub: PubSubClient, http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    subject = transport(pubsub)
    await subject.open()
    try:
        await subject.subscribe(StartAt.NEW)
        await post(http, emulator, "pubsub/drop", {})
        with pytest.raises(Reconnect, match="UNAVAILABLE"):
            await receive_events(subject, 1)
    finally:
        await subject.close()


async def test_a_cometd_position_is_not_resumable_and_bad_batch_sizes_are_refused(
    pubsub: PubSubClient,
) -> None:
    subject = transport(pubsub)
    assert not subject.resumable(12345) and not subject.resumable(b"")
    assert subject.resumable(b"\x00")
    for size in (0, 101):
        with pytest.raises(ValueError):
            PubSubTransport(pubsub, CHANNEL, batch_size=size)


async def test_a_stream_the_server_closed_for_idleness_raises_reconnect(
    pubsub: PubSubClient, org: OrgClient, emulator: RunningEmulator
) -> None:
    emulator.ctx.settings.pubsub_idle_close_s = 0.3
    subject = transport(pubsub, batch_size=1)
    await subject.open()
    try:
        await subject.subscribe(StartAt.NEW)
        await org.create("Account", {"Name": "The only one asked for"})
        await receive_events(subject, 1)
        # The loop takes its time storing it: the stream, with nothing asked for, is closed.
        await asyncio.sleep(1.0)
        with pytest.raises(Reconnect, match="closed the stream"):
            await subject.receive()
    finally:
        await subject.close()
