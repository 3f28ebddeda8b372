"""A Streaming API answer (or a proxy in front of it) that quotes the request's
Authorization header in its error puts the daemon's Salesforce access token into the
trigger's `last_error`, which the status page and the admin API show.

The logs redact a bearer token inside free text; the trigger's status, which carries the
same error, only strips URL user-info. Real emulator over real HTTP, real SQLite store; the
middleware answers one long-poll with the header quoted, as a peer echoing the request may.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from sftriggerd_emulator.context import EmulatorSettings
from tests.hostile.stream_tamper import Handler, hostile_settings, streaming_rig
from tests.support.emulator import Middleware, RunningEmulator
from tests.support.waiting import eventually


@dataclass
class EchoingPeer:
    """Answers the next `echoes` long-polls `401` quoting their Authorization header."""

    echoes: int = 0
    echoed: str = ""

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/cometd/") or self.echoes <= 0:
            return await handler(request)
        sent = json.loads(await request.read())
        if [m.get("channel") for m in sent] != ["/meta/connect"]:
            return await handler(request)
        self.echoes -= 1
        self.echoed = request.headers["Authorization"].removeprefix("Bearer ")
        error = f"401::Authentication invalid for {request.headers['Authorization']}"
        reply = {"channel": "/meta/connect", "id": sent[0].get("id"), "successful": False}
        return web.json_response([{**reply, "error": error, "advice": {"reconnect": "none"}}])


@pytest.fixture
def peer() -> EchoingPeer:
    return EchoingPeer()


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    return hostile_settings(tmp_path)


@pytest.fixture
def emulator_middlewares(peer: EchoingPeer) -> tuple[Middleware, ...]:
    return (peer.middleware,)


async def test_an_echoed_access_token_never_reaches_the_trigger_status(
    emulator: RunningEmulator,
    peer: EchoingPeer,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    rig = await streaming_rig(emulator, http, tmp_path)
    rig.start()
    try:
        await rig.connected()
        peer.echoes = 1
        await eventually(lambda: rig.faults("relogin") >= 1)
        shown = json.dumps(rig.source.status.as_json())  # what the status page and API show
        assert peer.echoed
        assert peer.echoed not in shown
    finally:
        await rig.stop()
        await rig.store.close()
