"""The streaming transport protocol (sources/transport.py), the same cases for every adapter
against the bundled emulator: where a subscription starts, what a batch carries, and the
neutral outcome each server fault must become. A new adapter is one more `Adapter` below."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from sftriggerd.events.normalise import cdc_changes
from sftriggerd.metrics import Metrics
from sftriggerd.salesforce.client import SalesforceClient
from sftriggerd.salesforce.pubsub.client import PubSubClient
from sftriggerd.sources.cometd_transport import CometdTransport
from sftriggerd.sources.pubsub_transport import PubSubTransport
from sftriggerd.sources.transport import (
    ChannelUnavailable,
    Reauthenticate,
    Received,
    Reconnect,
    ReplayExpired,
    Stalled,
    StartAt,
    StreamTransport,
)
from sftriggerd_emulator.context import EmulatorSettings
from tests.integration.polling_rig import wire
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient, control

CHANNEL = "/data/AccountChangeEvent"
# The server holds an empty poll (CometD) or sends a keepalive (Pub/Sub) after this long
# (ms); the adapter gives up this much later (s).
HOLD_MS, STALL_MARGIN_S = 1000, 1.0
# How long a Pub/Sub subscribe waits for a refusal: the emulator refuses at once.
SETTLE_S = 0.3

Session = Callable[[str], AbstractAsyncContextManager[StreamTransport]]
Fault = Callable[[aiohttp.ClientSession, str], Awaitable[None]]


async def _post(http: aiohttp.ClientSession, url: str, path: str, body: dict[str, object]) -> None:
    answer = await control(http, url, path, body)
    assert answer.status == 200, answer.body


@dataclass(frozen=True)
class Adapter:
    """One transport under test, and how the emulator makes each fault on its side."""

    name: str
    make: Callable[[SalesforceClient, PubSubClient, str], StreamTransport]
    missing_channel: str
    drop_clients: Fault
    expire_positions: Fault
    stall_once: Fault


COMETD = Adapter(
    name="cometd",
    make=lambda client, _, channel: CometdTransport(client, channel, stall_margin_s=STALL_MARGIN_S),
    missing_channel="/topic/NotDefined",
    drop_clients=lambda http, url: _post(http, url, "clients/forget", {}),
    expire_positions=lambda http, url: _post(
        http, url, "retention", {"drop_before_replay_id": 10**12}
    ),
    stall_once=lambda http, url: _post(
        http, url, "delay", {"surface": "cometd", "seconds": 4, "count": 1}
    ),
)


PUBSUB = Adapter(
    name="pubsub",
    make=lambda _, pubsub, channel: PubSubTransport(
        pubsub,
        channel,
        keepalive_s=HOLD_MS / 1000,
        stall_margin_s=STALL_MARGIN_S,
        settle_s=SETTLE_S,
    ),
    missing_channel="/topic/NotDefined",  # PushTopics exist only on the Streaming API
    drop_clients=lambda http, url: _post(http, url, "pubsub/drop", {}),
    expire_positions=lambda http, url: _post(
        http, url, "retention", {"drop_before_replay_id": 10**12}
    ),
    stall_once=lambda http, url: _post(http, url, "pubsub/silence", {"enabled": True}),
)


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    return EmulatorSettings(
        state_dir=tmp_path / "org",
        cometd_timeout_ms=HOLD_MS,
        pubsub_port=0,
        pubsub_keepalive_s=HOLD_MS / 1000,
    )


@pytest.fixture(params=[COMETD, PUBSUB], ids=lambda adapter: adapter.name)
def adapter(request: pytest.FixtureRequest) -> Adapter:
    chosen: Adapter = request.param
    return chosen


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


@pytest.fixture
def session(adapter: Adapter, client: SalesforceClient, pubsub: PubSubClient) -> Session:
    """Opens a session of a channel, and closes it after the block."""

    @contextlib.asynccontextmanager
    async def opened(channel: str) -> AsyncIterator[StreamTransport]:
        transport = adapter.make(client, pubsub, channel)
        try:
            await transport.open()
            yield transport
        finally:
            await transport.close()

    return opened


async def receive(transport: StreamTransport, count: int, timeout_s: float = 10) -> list[Received]:
    """Exactly the next `count` items (batches are cut wherever the server cuts them)."""
    items: list[Received] = []
    async with asyncio.timeout(timeout_s):
        while len(items) < count:
            items.extend(await transport.receive())
    assert len(items) == count, [item.payload for item in items]
    return items


async def receive_until_raised(transport: StreamTransport, timeout_s: float = 10) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            await transport.receive()


def record_ids(items: list[Received]) -> list[str]:
    """The records of CDC items, read by the same normaliser the source uses."""
    found: list[str] = []
    for item in items:
        changes = cdc_changes("conformance", item)
        assert isinstance(changes, list), changes
        found.extend(change.record_id or "" for change in changes)
    return found


async def test_new_receives_only_what_comes_after_with_positions(
    session: Session, org: OrgClient
) -> None:
    await org.create("Account", {"Name": "Before"})
    async with session(CHANNEL) as transport:
        await transport.subscribe(StartAt.NEW)
        after = [await org.create("Account", {"Name": f"After {n}"}) for n in range(3)]
        items = await receive(transport, 3)
        assert record_ids(items) == after
        positions = [item.position for item in items]
        assert all(p is not None and transport.resumable(p) for p in positions)
        assert len(set(positions)) == 3
        assert all(item.channel == CHANNEL and item.unreadable is None for item in items)


async def test_retained_receives_everything_kept_in_order(session: Session, org: OrgClient) -> None:
    made = [await org.create("Account", {"Name": f"Kept {n}"}) for n in range(3)]
    async with session(CHANNEL) as transport:
        await transport.subscribe(StartAt.RETAINED)
        assert record_ids(await receive(transport, 3)) == made


async def test_after_a_position_resumes_with_the_next_event_in_a_new_session(
    session: Session, org: OrgClient
) -> None:
    made = [await org.create("Account", {"Name": f"Kept {n}"}) for n in range(4)]
    async with session(CHANNEL) as transport:
        await transport.subscribe(StartAt.RETAINED)
        first = await receive(transport, 4)
    position = first[1].position
    assert position is not None
    async with session(CHANNEL) as transport:
        await transport.subscribe(position)
        assert record_ids(await receive(transport, 2)) == made[2:]
        latest = await org.create("Account", {"Name": "Live"})
        assert record_ids(await receive(transport, 1)) == [latest]


async def test_a_position_past_retention_raises_replay_expired_and_new_still_works(
    session: Session,
    org: OrgClient,
    adapter: Adapter,
    http: aiohttp.ClientSession,
    emulator: RunningEmulator,
) -> None:
    await org.create("Account", {"Name": "Seen"})
    async with session(CHANNEL) as transport:
        await transport.subscribe(StartAt.RETAINED)
        [seen] = await receive(transport, 1)
    assert seen.position is not None
    await org.create("Account", {"Name": "Dropped"})
    await adapter.expire_positions(http, emulator.url)
    async with session(CHANNEL) as transport:
        with pytest.raises(ReplayExpired):
            await transport.subscribe(seen.position)
        # The stream loop's recovery: subscribe for new events on the same session.
        await transport.subscribe(StartAt.NEW)
        latest = await org.create("Account", {"Name": "After expiry"})
        assert record_ids(await receive(transport, 1)) == [latest]


async def test_a_missing_channel_raises_channel_unavailable(
    session: Session, adapter: Adapter
) -> None:
    async with session(adapter.missing_channel) as transport:
        with pytest.raises(ChannelUnavailable):
            await transport.subscribe(StartAt.NEW)


async def test_a_dropped_client_raises_reconnect_and_a_new_session_works(
    session: Session,
    org: OrgClient,
    adapter: Adapter,
    http: aiohttp.ClientSession,
    emulator: RunningEmulator,
) -> None:
    async with session(CHANNEL) as transport:
        await transport.subscribe(StartAt.NEW)
        await adapter.drop_clients(http, emulator.url)
        with pytest.raises(Reconnect):
            await receive_until_raised(transport)
    async with session(CHANNEL) as transport:
        await transport.subscribe(StartAt.NEW)
        latest = await org.create("Account", {"Name": "After the drop"})
        assert record_ids(await receive(transport, 1)) == [latest]


async def test_an_expired_session_raises_reauthenticate_until_logged_in_again(
    session: Session,
    client: SalesforceClient,
    http: aiohttp.ClientSession,
    emulator: RunningEmulator,
) -> None:
    async with session(CHANNEL) as transport:
        await transport.subscribe(StartAt.NEW)
        await _post(http, emulator.url, "sessions/expire", {})
        with pytest.raises(Reauthenticate):
            await receive_until_raised(transport)
    with pytest.raises(Reauthenticate):
        async with session(CHANNEL) as transport:
            await transport.subscribe(StartAt.NEW)
    await client.session.relogin(await client.session.token())
    org_again = await OrgClient.login(http, emulator.url)
    async with session(CHANNEL) as transport:
        await transport.subscribe(StartAt.NEW)
        latest = await org_again.create("Account", {"Name": "After login"})
        assert record_ids(await receive(transport, 1)) == [latest]


async def test_a_held_answer_past_its_time_raises_stalled(
    session: Session,
    adapter: Adapter,
    http: aiohttp.ClientSession,
    emulator: RunningEmulator,
) -> None:
    async with session(CHANNEL) as transport:
        await transport.subscribe(StartAt.NEW)
        await adapter.stall_once(http, emulator.url)
        with pytest.raises(Stalled):
            await receive_until_raised(transport)


async def test_cometd_reconnect_none_advice_raises_reauthenticate_at_the_next_receive(
    client: SalesforceClient,
    pubsub: PubSubClient,
    http: aiohttp.ClientSession,
    emulator: RunningEmulator,
) -> None:
    """CometD only: the advice comes with an answer whose events are still delivered."""
    transport = COMETD.make(client, pubsub, CHANNEL)
    try:
        await transport.open()
        await transport.subscribe(StartAt.NEW)
        await _post(http, emulator.url, "cometd/advice", {"advice": {"reconnect": "none"}})
        # The shared long-poll may already hold the next connect when the advice is armed:
        # the answer carrying it is then the second; each answer before the raise is empty.
        with pytest.raises(Reauthenticate, match="reconnect: none"):
            for _ in range(3):
                assert await transport.receive() == []
    finally:
        await transport.close()
