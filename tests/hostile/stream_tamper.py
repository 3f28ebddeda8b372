"""The bundled emulator with a hostile Streaming API: a middleware in front of `/cometd/`
rewrites the real emulator's answers the way a broken or hostile peer would (garbage advice,
mistyped fields, connects refused as `403::Unknown client`). Everything else is the real
emulator over real HTTP, and the source under test runs on a real SQLite store."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sftriggerd.sources.context import SourceContext
from sftriggerd.sources.streaming import StreamingSource
from sftriggerd_emulator.context import EmulatorSettings
from tests.integration.streaming_rig import StreamingRig, make_streaming_rig
from tests.support.emulator import RunningEmulator, start_emulator
from tests.support.sfclient import control

Message = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UNKNOWN_CLIENT = {"interval": 0, "reconnect": "handshake"}


@dataclass
class Tamper:
    """What to do to the emulator's Bayeux answers; all off by default."""

    refuse_connects: bool = False
    refuse_subscribes: int = 0  # how many subscribes to answer `403::Unknown client`
    meta_fields: Message | None = None  # merged into every /meta/ reply
    rewrite_data: Callable[[Message], Message] | None = None
    refused: int = 0
    rewritten: list[Message] = field(default_factory=list)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/cometd/"):
            return await handler(request)
        sent = json.loads(await request.read())
        channels = {m.get("channel") for m in sent} if isinstance(sent, list) else set()
        refuse_subscribe = self.refuse_subscribes > 0 and "/meta/subscribe" in channels
        if (self.refuse_connects and "/meta/connect" in channels) or refuse_subscribe:
            self.refused += 1
            self.refuse_subscribes -= int(refuse_subscribe)
            return web.json_response([self._unknown_client(m) for m in sent])
        response = await handler(request)
        if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
            return response
        if self.meta_fields is None and self.rewrite_data is None:
            return response
        replies = json.loads(response.body)
        response.body = json.dumps([self._rewrite(reply) for reply in replies]).encode()
        return response

    def _rewrite(self, reply: Message) -> Message:
        if self.meta_fields is not None and str(reply.get("channel", "")).startswith("/meta/"):
            reply = {**reply, **self.meta_fields}
        if self.rewrite_data is not None and "data" in reply:
            reply = self.rewrite_data(reply)
            self.rewritten.append(reply)
        return reply

    @staticmethod
    def _unknown_client(message: Message) -> Message:
        return {
            "channel": message.get("channel"),
            "id": message.get("id"),
            "successful": False,
            "error": "403::Unknown client",
            "advice": UNKNOWN_CLIENT,
        }


@pytest.fixture
def tamper() -> Tamper:
    return Tamper()


def hostile_settings(tmp_path: Path) -> EmulatorSettings:
    """The emulator of the hostile streaming tests: long-polls held a second, not the usual
    forty, so that a test sees many answers."""
    return EmulatorSettings(state_dir=tmp_path / "org", cometd_timeout_ms=1000)


@pytest.fixture
async def hostile_emulator(tamper: Tamper, tmp_path: Path) -> AsyncIterator[RunningEmulator]:
    running, runner = await start_emulator(hostile_settings(tmp_path), (tamper.middleware,))
    try:
        yield running
    finally:
        await runner.cleanup()


async def streaming_rig(
    emulator: RunningEmulator,
    http: aiohttp.ClientSession,
    state_dir: Path,
    *,
    backoff_cap_s: float = 0.2,
    rig: StreamingRig | None = None,
    **trigger: Any,
) -> StreamingRig:
    """A streaming rig (optionally on another rig's store, as after a restart) whose source
    backs off up to `backoff_cap_s`."""
    store = rig.store if rig is not None else None
    made = await make_streaming_rig(emulator.url, http, state_dir, store=store, **trigger)
    context = SourceContext(
        client=made.client, ingest=made.ingest, store=made.store, metrics=made.metrics
    )
    made.source = StreamingSource(
        made.source.trigger,
        context,
        made.source.status,
        backoff_cap_s=backoff_cap_s,
        stall_margin_s=1.0,
    )
    return made


async def stat(http: aiohttp.ClientSession, emulator: RunningEmulator, name: str) -> int:
    answer = await control(http, emulator.url, "stats")
    return int(answer.body.get(name, 0))


async def live_clients(http: aiohttp.ClientSession, emulator: RunningEmulator) -> int:
    answer = await control(http, emulator.url, "channels")
    return int(answer.body["clients"])
