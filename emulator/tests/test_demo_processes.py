"""`python -m sftriggerd_emulator.demo receiver|changes`, the demo's parts that
deploy/compose/compose.yaml runs as containers, as real processes over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from sftriggerd_emulator.context import RecordChange
from tests.acceptance.cli import free_port
from tests.support.emulator import RunningEmulator

SECRET = "whsec_" + base64.b64encode(b"compose demo receiver key 32byte").decode()
DELIVERY = {
    "type": "account.created",
    "record_id": "001EM0000000001AAA",
    "record": {"Name": "Acme 1"},
    "change": "created",
    "changed_fields": [],
    "source": {"kind": "stream", "transport": "pubsub"},
}


async def start(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sftriggerd_emulator.demo",
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def next_line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    return (await asyncio.wait_for(process.stdout.readline(), 30)).decode()


async def stop(process: asyncio.subprocess.Process) -> tuple[int, str]:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    rest, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, rest.decode()


@pytest.fixture
async def receiver_process() -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    port = free_port()
    process = await start("receiver", "--port", str(port), env={"WEBHOOK_SECRET": SECRET})
    try:
        first = await next_line(process)
        assert first.strip() == f"receiver listening on http://127.0.0.1:{port}/webhook"
        yield process, f"http://127.0.0.1:{port}/webhook"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def signed(body: str, secret: str, message_id: str) -> dict[str, str]:
    now = datetime.now(UTC)
    signature = Webhook(secret).sign(message_id, now, body)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


async def test_receiver_prints_verified_deliveries_refuses_others_and_stops_on_sigterm(
    receiver_process: tuple[asyncio.subprocess.Process, str],
) -> None:
    process, url = receiver_process
    occurred = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    body = json.dumps({**DELIVERY, "occurred_at": occurred})
    other_secret = "whsec_" + base64.b64encode(b"a key the daemon does not hold!!").decode()
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=body, headers=signed(body, other_secret, "msg_1")) as r:
            assert r.status == 401
        async with http.post(url, data=body, headers=signed(body, SECRET, "msg_2")) as r:
            assert r.status == 204
    line = await next_line(process)
    assert "account.created" in line and "001EM0000000001AAA" in line, line
    assert "via pubsub" in line and line.rstrip().endswith("signature ok"), line
    returncode, rest = await stop(process)
    assert returncode == 0, rest
    assert "Traceback" not in rest
    # The refused delivery printed nothing.
    assert "msg_1" not in line + rest and "signature ok" not in rest


async def test_receiver_without_a_secret_exits_2_and_says_why() -> None:
    process = await start("receiver", "--port", str(free_port()), env={"WEBHOOK_SECRET": "x"})
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    output = out.decode()
    assert process.returncode == 2, output
    assert "WEBHOOK_SECRET must be a Standard Webhooks secret" in output


@pytest.fixture
async def ready_admin() -> AsyncIterator[str]:
    """A stand-in for the daemon's admin server: `changes` only asks its /readyz."""

    async def readyz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    app = web.Application()
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_changes_creates_records_in_the_org_and_stops_on_sigterm(
    emulator: RunningEmulator, record_changes: list[RecordChange], ready_admin: str
) -> None:
    process = await start("changes", "--emulator", emulator.url, "--admin", ready_admin, env={})
    try:
        first = await next_line(process)
        assert first.startswith(f"changing records at {emulator.url}")
        # The first change comes within a second of /readyz answering; the loop only waits.
        for _ in range(300):
            if record_changes or process.returncode is not None:
                break
            await asyncio.sleep(0.1)
    finally:
        returncode, rest = await stop(process)
    assert returncode == 0, rest
    assert "Traceback" not in rest
    assert record_changes, "no record was created"
    assert record_changes[0].object_name == "Account"
