"""A channel one trigger left and took up again on the shared CometD client is silenced for
good when the server acts on the old unsubscribe after the new subscribe.

The hub gives an unsubscribe two seconds and then forgets it. The request itself may still
reach Salesforce (it was sent; only the answer is late), and Salesforce then drops the
channel's subscription on the one client every trigger shares, after the trigger has
subscribed it again. The trigger keeps an inbox that the other channels' long-poll answers
keep "alive", so it looks connected and healthy while no event of its channel ever comes.

Here the network delays the unsubscribe until the re-subscribe has been answered; everything
else is the real emulator over real HTTP and a real SQLite store.
"""

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
class LateUnsubscribes:
    """Holds every unsubscribe of `channel` (while `holding`) until a subscribe of it has
    been answered, then lets the server act on it: a slow network path, not a refusal."""

    channel: str
    holding: bool = False
    held: list[asyncio.Task[web.StreamResponse]] = field(default_factory=list)
    resubscribed: asyncio.Event = field(default_factory=asyncio.Event)
    late_unsubscribes_done: int = 0

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/cometd/"):
            return await handler(request)
        sent = json.loads(await request.read())
        meta = {(m.get("channel"), m.get("subscription")) for m in sent}
        if self.holding and ("/meta/unsubscribe", self.channel) in meta:
            task = asyncio.create_task(self._late(request, handler))
            self.held.append(task)
            return await asyncio.shield(task)
        response = await handler(request)
        if self.held and ("/meta/subscribe", self.channel) in meta:
            self.resubscribed.set()
        return response

    async def _late(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        await self.resubscribed.wait()
        response = await handler(request)
        self.late_unsubscribes_done += 1
        return response


@pytest.fixture
def late() -> LateUnsubscribes:
    return LateUnsubscribes(ACCOUNTS)


@pytest.fixture
async def slow_emulator(late: LateUnsubscribes, tmp_path: Path) -> AsyncIterator[RunningEmulator]:
    settings = EmulatorSettings(state_dir=tmp_path / "org", cometd_timeout_ms=1000)
    app, ctx = build_app(settings)
    app.middlewares.append(late.middleware)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    settings.port = runner.addresses[0][1]
    try:
        yield RunningEmulator(url=ctx.base_url, ctx=ctx)
    finally:
        for task in late.held:
            task.cancel()
        await runner.cleanup()


async def shared_rig(
    emulator: RunningEmulator,
    http: aiohttp.ClientSession,
    state_dir: Path,
    hub_of: Callable[[StreamingRig], CometdHub],
    **trigger: object,
) -> StreamingRig:
    """A streaming rig whose source reads through the daemon-wide hub `hub_of` gives."""
    rig = await make_streaming_rig(emulator.url, http, state_dir, **trigger)
    context = SourceContext(
        client=rig.client,
        ingest=rig.ingest,
        store=rig.store,
        metrics=rig.metrics,
        cometd=hub_of(rig),
    )
    rig.source = StreamingSource(
        rig.source.trigger, context, rig.source.status, backoff_cap_s=0.2, stall_margin_s=1.0
    )
    return rig


async def test_a_late_unsubscribe_silences_the_resubscribed_channel_for_good(
    slow_emulator: RunningEmulator,
    late: LateUnsubscribes,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    hubs: list[CometdHub] = []

    def hub_of(rig: StreamingRig) -> CometdHub:
        if not hubs:  # a small inbox, so three events at once send the trigger round
            hubs.append(CometdHub(rig.client, stall_margin_s=1.0, inbox_limit=2))
        return hubs[0]

    accounts = await shared_rig(slow_emulator, http, tmp_path / "a", hub_of)
    contacts = await shared_rig(
        slow_emulator, http, tmp_path / "c", hub_of, name="contacts", object="Contact",
        fields=["LastName"],
    )  # fmt: skip
    org = await OrgClient.login(http, slow_emulator.url)
    try:
        for rig in (accounts, contacts):
            rig.start()
            await rig.connected()
        late.holding = True
        # More than the inbox holds, in one answer: `accounts` leaves its channel (the
        # unsubscribe is slow) and subscribes it again at once on the same client.
        burst = await org.create_many("Account", [{"Name": f"Burst{i}"} for i in range(3)])
        async with asyncio.timeout(20):
            while late.late_unsubscribes_done == 0:
                await asyncio.sleep(0.05)
        await accounts.wait_events(len(burst), timeout_s=20)  # the back-fill of the burst
        await accounts.connected()

        later = await org.create("Account", {"Name": "After the late unsubscribe"})
        await contacts.wait_events(0)
        # The account streamed after the re-subscribe reaches the store.
        async with asyncio.timeout(20):
            while later not in {record for _, record in accounts.changes()}:
                await asyncio.sleep(0.05)
    finally:
        for rig in (accounts, contacts):
            await rig.stop()
            await rig.store.close()
        for hub in hubs:
            await hub.close()
