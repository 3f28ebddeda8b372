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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sftriggerd_emulator.context import EmulatorSettings
from sftriggerd_emulator.streaming.endpoint import HUB
from tests.hostile.shared_client_network import (
    Handler,
    bayeux_sent,
    two_triggers_on_one_client,
)
from tests.hostile.stream_tamper import hostile_settings
from tests.support.emulator import Middleware, RunningEmulator
from tests.support.waiting import eventually

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
        sent = await bayeux_sent(request)
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
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    return hostile_settings(tmp_path)


@pytest.fixture
def emulator_middlewares(server: FlushingServer) -> tuple[Middleware, ...]:
    return (server.middleware,)


async def test_an_event_beside_another_triggers_unsubscribe_is_stored(
    emulator: RunningEmulator,
    server: FlushingServer,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    async with two_triggers_on_one_client(emulator, http, tmp_path) as shared:
        contacts, org = shared.contacts, shared.org
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
        await eventually(lambda: later in shared.stored(), 20)
        # Every change of the org reaches the store.
        await eventually(lambda: queued in shared.stored(), 5)
