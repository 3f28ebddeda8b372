"""A long-poll answer the network delivers late puts a channel's old events into the inbox
of its new subscription on the same shared CometD client, and the trigger stores them, and
its position with them, before the events its old subscription had brought while it had no
inbox.

The unsubscribe is answered (the channel is not suspect), but a long-poll answer the server
made before it (from the old subscription) is still on its way; the trigger subscribes its
channel again on the same client, and that answer lands in the new inbox. The event before
it, delivered while the channel had no inbox and dropped, is replayed only after: the
position passed it unstored (a stop there, and it is lost).

The network here delays the unsubscribe, that one long-poll answer and the re-subscribe;
everything else is the real emulator over real HTTP and a real SQLite store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from sftriggerd.sources.cometd_hub import CometdHub
from sftriggerd.sources.context import SourceContext
from sftriggerd.sources.streaming import StreamingSource
from sftriggerd_emulator.context import EmulatorSettings
from sftriggerd_emulator.server import build_app
from tests.integration.streaming_rig import StreamingRig, make_streaming_rig
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ACCOUNTS = "/data/AccountChangeEvent"


def gate() -> asyncio.Event:
    return asyncio.Event()


@dataclass
class LateNetwork:
    """Holds requests and answers of `channel` until the test lets them go."""

    channel: str
    hold_unsubscribe: bool = False
    hold_answers: bool = False
    hold_subscribe: bool = False
    unsubscribe_arrived: asyncio.Event = field(default_factory=gate)
    release_unsubscribe: asyncio.Event = field(default_factory=gate)
    answer_held: asyncio.Event = field(default_factory=gate)
    release_answers: asyncio.Event = field(default_factory=gate)
    subscribe_arrived: asyncio.Event = field(default_factory=gate)
    release_subscribe: asyncio.Event = field(default_factory=gate)
    channel_answers: int = 0
    connects: int = 0

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/cometd/"):
            return await handler(request)
        sent = json.loads(await request.read())
        meta = {(m.get("channel"), m.get("subscription")) for m in sent}
        if self.hold_unsubscribe and ("/meta/unsubscribe", self.channel) in meta:
            self.hold_unsubscribe = False
            self.unsubscribe_arrived.set()
            await self.release_unsubscribe.wait()
        if self.hold_subscribe and ("/meta/subscribe", self.channel) in meta:
            self.hold_subscribe = False
            self.subscribe_arrived.set()
            await self.release_subscribe.wait()
        is_connect = ("/meta/connect", None) in meta
        self.connects += int(is_connect)
        response = await handler(request)
        if is_connect and isinstance(response, web.Response):
            body = json.loads(response.body) if isinstance(response.body, bytes) else []
            if any(reply.get("channel") == self.channel for reply in body):
                self.channel_answers += 1
                if self.hold_answers:
                    self.hold_answers = False
                    self.answer_held.set()
                    await self.release_answers.wait()
        return response

    def end(self) -> None:
        self.hold_unsubscribe = self.hold_answers = self.hold_subscribe = False
        for event in (self.release_unsubscribe, self.release_answers, self.release_subscribe):
            event.set()


@pytest.fixture
def network() -> LateNetwork:
    return LateNetwork(ACCOUNTS)


@pytest.fixture
async def late_emulator(network: LateNetwork, tmp_path: Path) -> AsyncIterator[RunningEmulator]:
    settings = EmulatorSettings(state_dir=tmp_path / "org", cometd_timeout_ms=1000)
    app, ctx = build_app(settings)
    app.middlewares.append(network.middleware)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    settings.port = runner.addresses[0][1]
    try:
        yield RunningEmulator(url=ctx.base_url, ctx=ctx)
    finally:
        network.end()
        await runner.cleanup()


async def rig_on(
    emulator: RunningEmulator,
    http: aiohttp.ClientSession,
    state_dir: Path,
    hub: Callable[[StreamingRig], CometdHub],
    **trigger: object,
) -> StreamingRig:
    rig = await make_streaming_rig(emulator.url, http, state_dir, **trigger)
    context = SourceContext(
        client=rig.client, ingest=rig.ingest, store=rig.store, metrics=rig.metrics, cometd=hub(rig)
    )
    rig.source = StreamingSource(
        rig.source.trigger, context, rig.source.status, backoff_cap_s=0.2, stall_margin_s=1.0
    )
    return rig


async def until(check: Callable[[], bool], timeout_s: float = 20) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.01)


async def test_a_late_answer_of_the_old_subscription_never_passes_unstored_events(
    late_emulator: RunningEmulator,
    network: LateNetwork,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    hubs: list[CometdHub] = []

    def shared(rig: StreamingRig) -> CometdHub:
        if not hubs:
            hubs.append(CometdHub(rig.client, stall_margin_s=1.0))
        return hubs[0]

    accounts = await rig_on(late_emulator, http, tmp_path / "a", shared)
    contacts = await rig_on(
        late_emulator, http, tmp_path / "c", shared, name="contacts", object="Contact",
        fields=["LastName"],
    )  # fmt: skip
    org = await OrgClient.login(http, late_emulator.url)

    async def routed(seen: int) -> None:
        await until(lambda: network.channel_answers > seen)
        connects = network.connects
        await until(lambda: network.connects > connects)

    try:
        for rig in (accounts, contacts):
            rig.start()
            await rig.connected()
        first = await org.create("Account", {"Name": "Stored first"})
        await until(lambda: first in {record for _, record in accounts.changes()})

        # `accounts` stops (its lease moved, say); its unsubscribe is slow on the way.
        network.hold_unsubscribe = True
        stopping = asyncio.create_task(accounts.stop())
        await asyncio.wait_for(network.unsubscribe_arrived.wait(), 5)
        seen = network.channel_answers
        dropped = await org.create("Account", {"Name": "While the channel has no inbox"})
        await routed(seen)
        network.hold_answers = True
        late = await org.create("Account", {"Name": "In an answer the network delays"})
        await asyncio.wait_for(network.answer_held.wait(), 5)
        network.release_unsubscribe.set()  # answered in time: nothing suspect
        await stopping

        # `accounts` starts again on the same client; the late answer lands meanwhile.
        network.hold_subscribe = True
        accounts.start()
        await asyncio.wait_for(network.subscribe_arrived.wait(), 5)
        connects = network.connects
        network.release_answers.set()
        await until(lambda: network.connects > connects)
        network.release_subscribe.set()
        await until(lambda: {dropped, late} <= {record for _, record in accounts.changes()})

        # Each batch is stored with the position of its last event: the dropped account
        # was stored before the later one, else the position passed it unstored.
        order = [record for _, record in accounts.changes()]
        assert order.index(dropped) < order.index(late), order
    finally:
        network.end()
        for rig in (accounts, contacts):
            await rig.stop()
            await rig.store.close()
        for hub in hubs:
            await hub.close()
