"""An event the server hands the shared CometD client beside a reply other than a long-poll
is dropped, and the trigger it belongs to never stores it.

A Bayeux server may deliver a client's queued events in the answer to any of its requests
(CometD's servers do, unless configured for connect-only delivery), and `split_answer`
reads them beside every reply. The Bayeux client returns them only from `/meta/connect`:
those beside a subscribe or unsubscribe answer are thrown away. With one client shared by
every CometD trigger, another trigger's (un)subscribe now carries this trigger's events,
and later events move its position past the one dropped.

The server here flushes a client's queue into the answer of a subscribe or unsubscribe when
no long-poll of the client is held; everything else is the real emulator over real HTTP and
a real SQLite store.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sftriggerd.sources.cometd_hub import CometdHub
from sftriggerd.sources.context import SourceContext
from sftriggerd.sources.streaming import StreamingSource
from sftriggerd_emulator.context import EmulatorSettings
from sftriggerd_emulator.server import build_app
from sftriggerd_emulator.streaming.endpoint import HUB
from tests.integration.streaming_rig import StreamingRig, make_streaming_rig
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# The pause the server advises once, so that the client holds no long-poll for a while.
PAUSE = {"interval": 3000, "timeout": 1000, "reconnect": "retry"}


@dataclass
class FlushingServer:
    """Delivers queued events beside (un)subscribe answers, as a CometD server may."""

    flush: bool = False
    pause_next_connect: bool = False
    paused: asyncio.Event = field(default_factory=asyncio.Event)
    carried: list[dict[str, Any]] = field(default_factory=list)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/cometd/"):
            return await handler(request)
        sent = json.loads(await request.read())
        response = await handler(request)
        if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
            return response
        replies = json.loads(response.body)
        for message in sent:
            channel = message.get("channel")
            if channel == "/meta/connect" and self.pause_next_connect:
                self.pause_next_connect = False
                replies = [{**r, "advice": PAUSE} for r in replies]
                self.paused.set()
            elif channel in ("/meta/subscribe", "/meta/unsubscribe") and self.flush:
                replies.extend(self._queued(request, message.get("clientId")))
        response.body = json.dumps(replies).encode()
        return response

    def _queued(self, request: web.Request, client_id: object) -> list[dict[str, Any]]:
        hub = request.config_dict[HUB]
        client = hub.clients.get(client_id, hub.ctx.clock.now())
        if client is None or client.hold is not None:
            return []  # a held long-poll is the one that delivers
        events = hub.take_messages(client)
        self.carried.extend(events)
        return events


@pytest.fixture
def server() -> FlushingServer:
    return FlushingServer()


@pytest.fixture
async def flushing_emulator(
    server: FlushingServer, tmp_path: Path
) -> AsyncIterator[RunningEmulator]:
    settings = EmulatorSettings(state_dir=tmp_path / "org", cometd_timeout_ms=1000)
    app, ctx = build_app(settings)
    app.middlewares.append(server.middleware)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    settings.port = runner.addresses[0][1]
    try:
        yield RunningEmulator(url=ctx.base_url, ctx=ctx)
    finally:
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
            await asyncio.sleep(0.02)


async def test_an_event_beside_another_triggers_unsubscribe_is_stored(
    flushing_emulator: RunningEmulator,
    server: FlushingServer,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    hubs: list[CometdHub] = []

    def shared(rig: StreamingRig) -> CometdHub:
        if not hubs:
            hubs.append(CometdHub(rig.client, stall_margin_s=1.0))
        return hubs[0]

    accounts = await rig_on(flushing_emulator, http, tmp_path / "a", shared)
    contacts = await rig_on(
        flushing_emulator, http, tmp_path / "c", shared, name="contacts", object="Contact",
        fields=["LastName"],
    )  # fmt: skip
    org = await OrgClient.login(http, flushing_emulator.url)
    try:
        for rig in (accounts, contacts):
            rig.start()
            await rig.connected()
        server.pause_next_connect = True
        await asyncio.wait_for(server.paused.wait(), 20)
        # The client waits the advised pause before its next long-poll: the account is
        # queued, and the stop of `contacts` (its unsubscribe) is what the server answers.
        queued = await org.create("Account", {"Name": "Queued while no poll is held"})
        server.flush = True
        await contacts.stop()
        assert [m["channel"] for m in server.carried] == ["/data/AccountChangeEvent"]
        server.flush = False

        later = await org.create("Account", {"Name": "After it"})
        await until(lambda: later in {record for _, record in accounts.changes()})
        # Every change of the org reaches the store.
        await until(lambda: queued in {record for _, record in accounts.changes()}, 5)
    finally:
        for rig in (accounts, contacts):
            await rig.stop()
            await rig.store.close()
        for hub in hubs:
            await hub.close()
