"""GetSchema against the emulator's Pub/Sub API, counted by the emulator: a schema is asked
for once per id however many callers meet it together; a slow answer for one id holds no
other id's; and a schema given up after its refusals costs no more calls for a while, so a
burst of its events is poison at once instead of three calls and two retries each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from sftriggerd.events.streamed import Received
from sftriggerd.metrics import Metrics
from sftriggerd.salesforce.client import SalesforceClient
from sftriggerd.salesforce.pubsub.client import SCHEMA_FAILURE_HOLD_S, PubSubClient
from sftriggerd.sources.pubsub_transport import SCHEMA_REFUSALS, pubsub_transports
from sftriggerd.sources.transport import StartAt, StreamTransport, TransportFailure
from sftriggerd_emulator.context import EmulatorSettings
from tests.integration.polling_rig import wire
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient, control
from tests.support.waiting import eventually

KEEPALIVE_S = 0.3
CHANNEL = "/data/AccountChangeEvent"
# A guard against a test that hangs, never a measure: every wait below ends far sooner.
GUARD_S = 8.0


class Clock:
    """The client's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


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
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def pubsub(
    emulator: RunningEmulator, client: SalesforceClient, clock: Clock
) -> AsyncIterator[PubSubClient]:
    made = PubSubClient(client.session, f"http://{emulator.pubsub_address}", clock=clock)
    yield made
    await made.close()


def schema_calls(emulator: RunningEmulator) -> int:
    return emulator.ctx.stats["pubsub_schema_calls"]


async def post(
    http: aiohttp.ClientSession, emulator: RunningEmulator, path: str, body: dict[str, object]
) -> None:
    answer = await control(http, emulator.url, path, body)
    assert answer.status == 200, answer.body


async def holding(http: aiohttp.ClientSession, emulator: RunningEmulator) -> int:
    answer = await control(http, emulator.url, "pubsub")
    assert isinstance(answer.body, dict)
    held: int = answer.body["armed"]["holding"]
    return held


async def test_a_slow_schema_holds_no_other_and_callers_of_one_id_share_one_call(
    pubsub: PubSubClient, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    slow = (await pubsub.get_topic("/data/AccountChangeEvent")).schema_id
    other = (await pubsub.get_topic("/data/ContactChangeEvent")).schema_id
    assert slow and other and slow != other
    await post(http, emulator, "pubsub/hold", {"match": f"GetSchema {slow}"})
    waiting = [asyncio.ensure_future(pubsub.decoder(slow)) for _ in range(5)]
    try:
        await eventually(lambda: holding(http, emulator), GUARD_S)
        async with asyncio.timeout(GUARD_S):  # with one lock for every id, this waits
            other_decoder = await pubsub.decoder(other)
        assert other_decoder.schema.is_change_event
        assert not any(caller.done() for caller in waiting)
    finally:
        await post(http, emulator, "pubsub/hold", {"enabled": False})
    async with asyncio.timeout(GUARD_S):
        decoders = await asyncio.gather(*waiting)
    assert all(decoder is decoders[0] for decoder in decoders)
    assert schema_calls(emulator) == 2  # one for each id
    assert await pubsub.decoder(slow) is decoders[0]
    assert schema_calls(emulator) == 2


async def test_a_caller_cancelled_while_waiting_leaves_the_call_to_the_others(
    pubsub: PubSubClient, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    schema_id = (await pubsub.get_topic(CHANNEL)).schema_id
    await post(http, emulator, "pubsub/hold", {"match": "GetSchema"})
    first = asyncio.ensure_future(pubsub.decoder(schema_id))
    second = asyncio.ensure_future(pubsub.decoder(schema_id))
    try:
        await eventually(lambda: holding(http, emulator), GUARD_S)
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
    finally:
        await post(http, emulator, "pubsub/hold", {"enabled": False})
    async with asyncio.timeout(GUARD_S):
        decoder = await second
    assert decoder.schema.is_change_event and first.cancelled()
    assert schema_calls(emulator) == 1


async def test_a_burst_of_a_given_up_schema_costs_its_refusals_only_until_the_hold_passes(
    pubsub: PubSubClient,
    emulator: RunningEmulator,
    http: aiohttp.ClientSession,
    org: OrgClient,
    clock: Clock,
) -> None:
    burst = 6
    for number in range(burst):
        await org.create("Account", {"Name": f"Burst {number}"})
    make = pubsub_transports(pubsub, keepalive_s=KEEPALIVE_S, stall_margin_s=1.0, settle_s=0.2)
    refused = {"status": "PERMISSION_DENIED", "match": "GetSchema", "count": -1}
    await post(http, emulator, "pubsub/fail", refused)
    for _ in range(SCHEMA_REFUSALS - 1):  # each refusal retried, as before
        with pytest.raises(TransportFailure, match="GetSchema failed: PERMISSION_DENIED"):
            await first_items(make(CHANNEL))
    items = await first_items(make(CHANNEL), count=burst)  # the last refusal: given up
    assert len(items) == burst
    assert all(item.unreadable and "cannot be had" in item.unreadable for item in items)
    assert schema_calls(emulator) == SCHEMA_REFUSALS  # not SCHEMA_REFUSALS for each event

    # Within the hold, a session of another trigger asks nothing either.
    clock.now_s += SCHEMA_FAILURE_HOLD_S - 1
    again = await first_items(make("/data/ChangeEvents"), count=burst)
    assert all(item.unreadable for item in again)
    assert schema_calls(emulator) == SCHEMA_REFUSALS

    # After it, the schema is asked for again: the refusal has passed, the events read.
    await post(http, emulator, "pubsub/fail", {**refused, "count": 0})
    clock.now_s += 1
    read = await first_items(make(CHANNEL), count=burst)
    assert [item.unreadable for item in read] == [None] * burst
    assert schema_calls(emulator) == SCHEMA_REFUSALS + 1


async def first_items(subject: StreamTransport, count: int = 1) -> list[Received]:
    items: list[Received] = []
    try:
        await subject.open()
        await subject.subscribe(StartAt.RETAINED)
        async with asyncio.timeout(GUARD_S):
            while len(items) < count:
                items += await subject.receive()
    finally:
        await subject.close()
    return items
