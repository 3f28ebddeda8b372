"""The stored position of a trigger on the shared CometD client moves past events it never
stored, when an old subscription of its channel is still live on that client.

The hub forgets an unsubscribe it got no answer to within two seconds (here the network
loses it), and the trigger subscribes its channel again on the same client. Its new inbox
exists before the new subscribe is answered, so the long-poll routes into it what the old
subscription (far ahead: its overflowed events were dropped) still brings. The trigger
stores that event first, and its position with it, ahead of the events the overflow
dropped. Stopped there (a restart, a lost lease), it resumes past them: they are lost.

The network here loses the unsubscribe, is slow with one subscribe and with the long-poll
answers after it; everything else is the real emulator over real HTTP and a real SQLite
store."""

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


@dataclass
class SlowNetwork:
    """What happens to the Bayeux requests of `channel` on their way, all off at first."""

    channel: str
    lose_unsubscribes: bool = False
    hold_subscribe: bool = False
    subscribe_held: asyncio.Event = field(default_factory=asyncio.Event)
    release_subscribe: asyncio.Event = field(default_factory=asyncio.Event)
    gone: asyncio.Event = field(default_factory=asyncio.Event)  # the test is over
    channel_answers: int = 0  # connect answers that carried an event of `channel`
    connects: int = 0

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/cometd/"):
            return await handler(request)
        sent = json.loads(await request.read())
        meta = {(m.get("channel"), m.get("subscription")) for m in sent}
        if self.lose_unsubscribes and ("/meta/unsubscribe", self.channel) in meta:
            await self.gone.wait()  # never reaches the server
            return web.json_response([])
        if self.hold_subscribe and ("/meta/subscribe", self.channel) in meta:
            self.hold_subscribe = False
            self.subscribe_held.set()
            waits = {asyncio.ensure_future(e.wait()) for e in self._ends()}
            _, waiting = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for wait in waiting:
                wait.cancel()
        is_connect = any(channel == "/meta/connect" for channel, _ in meta)
        self.connects += int(is_connect)
        response = await handler(request)
        if is_connect and isinstance(response, web.Response):
            body = json.loads(response.body) if isinstance(response.body, bytes) else []
            if any(reply.get("channel") == self.channel for reply in body):
                self.channel_answers += 1
        return response

    def _ends(self) -> tuple[asyncio.Event, asyncio.Event]:
        return self.release_subscribe, self.gone

    def end(self) -> None:
        self.lose_unsubscribes = self.hold_subscribe = False
        for event in (self.release_subscribe, self.gone):
            event.set()


@pytest.fixture
def network() -> SlowNetwork:
    return SlowNetwork(ACCOUNTS)


@pytest.fixture
async def slow_emulator(network: SlowNetwork, tmp_path: Path) -> AsyncIterator[RunningEmulator]:
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
    """A streaming rig whose source reads through the hub `hub` gives it."""
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
            await asyncio.sleep(0.02)


async def test_a_stale_subscription_moves_the_position_past_unstored_events(
    slow_emulator: RunningEmulator,
    network: SlowNetwork,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    hubs: list[CometdHub] = []

    def shared(rig: StreamingRig) -> CometdHub:
        if not hubs:
            hubs.append(CometdHub(rig.client, stall_margin_s=1.0))
        return hubs[0]

    accounts = await rig_on(slow_emulator, http, tmp_path / "a", shared)
    contacts = await rig_on(
        slow_emulator, http, tmp_path / "c", shared, name="contacts", object="Contact",
        fields=["LastName"],
    )  # fmt: skip
    org = await OrgClient.login(http, slow_emulator.url)

    async def routed() -> None:
        """Until an answer with an account came and the client polled again after it."""
        await until(lambda: network.channel_answers > seen)
        connects = network.connects
        await until(lambda: network.connects > connects)

    try:
        for rig in (accounts, contacts):
            rig.start()
            await rig.connected()
        first = await org.create("Account", {"Name": "Stored first"})
        await until(lambda: first in {record for _, record in accounts.changes()})

        # `accounts` stops (its lease went to another replica, say) while `contacts` keeps
        # the client; its unsubscribe is lost on the way.
        network.lose_unsubscribes = True
        await accounts.stop()
        seen = network.channel_answers
        missed = await org.create_many("Account", [{"Name": f"Missed{i}"} for i in range(3)])
        await routed()  # brought by the old subscription, read by no one

        # `accounts` starts again (its lease came back) on the same client; the network is
        # slow with its subscribe, and the old subscription brings the next account.
        network.hold_subscribe = True
        accounts.start()
        await asyncio.wait_for(network.subscribe_held.wait(), 20)
        seen = network.channel_answers
        stale = await org.create("Account", {"Name": "Through the old subscription"})
        await routed()
        network.release_subscribe.set()
        await until(lambda: {*missed, stale} <= {record for _, record in accounts.changes()})

        # Each batch is stored with the position of its last event: the missed accounts
        # were stored before anything after them, else the position passed them unstored.
        order = [record for _, record in accounts.changes()]
        assert all(order.index(record) < order.index(stale) for record in missed), order
    finally:
        network.end()
        for rig in (accounts, contacts):
            await rig.stop()
        for rig in (accounts, contacts):
            await rig.store.close()
        for hub in hubs:
            await hub.close()
