"""Our Bayeux client against faye, a Bayeux server nobody here wrote, on loopback."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from sftriggerd.salesforce.cometd import BayeuxClient, UnknownClientError
from tests.acceptance.cli import free_port

HERE = Path(__file__).parent
NODE_MODULES = HERE.parents[1] / "emulator" / "tests" / "conformance" / "node_modules"


def node_ready() -> bool:
    return shutil.which("node") is not None and (NODE_MODULES / "faye").exists()


pytestmark = pytest.mark.skipif(
    not node_ready() and not os.environ.get("CI"),
    reason="needs node and `npm ci` in emulator/tests/conformance (make test does it)",
)


@pytest.fixture
async def faye() -> AsyncIterator[str]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        "node",
        str(HERE / "faye" / "faye_server.js"),
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 15)
    assert line.strip() == b"ready", line
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    await process.wait()


async def no_auth() -> str:
    return "Bearer unused"


async def publish(http: aiohttp.ClientSession, base: str, channel: str, data: object) -> None:
    async with http.post(f"{base}/publish", json={"channel": channel, "data": data}) as response:
        assert response.status == 200, await response.text()


async def test_handshake_subscribe_receive_and_disconnect(faye: str) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        client = BayeuxClient(http, f"{faye}/bayeux", no_auth, stall_margin_s=2)
        reply = await client.handshake()
        assert reply["successful"] and client.client_id
        await client.subscribe("/orders")
        assert client.subscriptions == {"/orders"}
        await client.connect()
        await publish(http, faye, "/orders", {"n": 1})
        received: list[object] = []
        async with asyncio.timeout(10):
            while not received:
                result = await client.connect()
                received += [event["data"] for event in result.events]
        assert received == [{"n": 1}]
        assert client.advice.timeout_ms == 2000  # faye's advice, in milliseconds
        await client.disconnect()
        assert client.client_id is None


async def test_an_unknown_client_is_told_to_handshake(faye: str) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        client = BayeuxClient(http, f"{faye}/bayeux", no_auth)
        await client.handshake()
        client.client_id = "no-such-client"
        with pytest.raises(UnknownClientError):
            await client.connect()
        await client.handshake()  # and recovers
        await client.subscribe("/again")
        assert client.subscriptions == {"/again"}
