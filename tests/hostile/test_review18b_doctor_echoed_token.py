"""A Streaming API answer (or a proxy in front of it) that quotes the request's Authorization
header in its refusal puts the Salesforce access token into `sftriggerd doctor`'s report.

The daemon scrubs the same text before it shows it (the trigger status goes through the log
redactor, which knows a bearer token's shape); the doctor prints the server's error as it
came, to a terminal or a CI log (`--json`) that is pasted into tickets. Real emulator over
real HTTP, the doctor as a child process; the middleware refuses the subscribe quoting the
header, as a peer echoing the request may."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from tests.acceptance.test_doctor import ACCOUNTS, doctor, write_config
from tests.hostile.stream_tamper import Handler
from tests.support.emulator import Middleware, RunningEmulator
from tests.support.receiver import Receiver
from tests.support.sfclient import OrgClient


@dataclass
class EchoingPeer:
    """Refuses every /meta/subscribe quoting its Authorization header."""

    echoed: str = ""

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/cometd/"):
            return await handler(request)
        sent = json.loads(await request.read())
        if [m.get("channel") for m in sent] != ["/meta/subscribe"]:
            return await handler(request)
        authorization = request.headers["Authorization"]
        self.echoed = authorization.removeprefix("Bearer ")
        reply = {
            "channel": "/meta/subscribe",
            "id": sent[0].get("id"),
            "clientId": sent[0].get("clientId"),
            "subscription": sent[0].get("subscription"),
            "successful": False,
            "error": f"403::Not allowed for {authorization}",
        }
        return web.json_response([reply])


@pytest.fixture
def peer() -> EchoingPeer:
    return EchoingPeer()


@pytest.fixture
def emulator_middlewares(peer: EchoingPeer) -> tuple[Middleware, ...]:
    return (peer.middleware,)


@pytest.mark.parametrize("output", [(), ("--json",)], ids=["text", "json"])
async def test_an_echoed_access_token_never_reaches_the_doctors_report(
    tmp_path: Path,
    emulator: RunningEmulator,
    org: OrgClient,
    receiver: Receiver,
    peer: EchoingPeer,
    output: tuple[str, ...],
) -> None:
    await org.create("Account", {"Name": "Seed", "Industry": "Energy"})
    config = write_config(tmp_path, emulator, receiver.url, triggers=ACCOUNTS)
    result = await doctor(config, *output)
    assert "trigger accounts channel" in result.stdout, result.stdout + result.stderr
    assert peer.echoed  # the refusal quoted the token
    assert peer.echoed not in result.stdout
