"""Item 5 through the real daemon: `sftriggerd run` as a subprocess polls the emulator and
delivers to two real receivers; one hangs on more requests than a shared pool of 100 holds,
and the other still gets every change at once."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.acceptance.cli import free_port
from tests.acceptance.harness import SECRET, Org, Process, Receiver, start, wait_http

RECORDS = 150
LATER = 30


@contextlib.asynccontextmanager
async def closing_receiver() -> AsyncIterator[Receiver]:
    """Verifies and counts every webhook, and closes each connection after its answer (as
    many receivers and load balancers do), so every send needs a connection of its own."""
    state = Receiver(port=free_port())

    async def handle(request: web.Request) -> web.Response:
        response = await state.handle(request)
        response.force_close()
        return response

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", state.port).start()
    try:
        yield state
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def hanging_receiver() -> AsyncIterator[tuple[int, list[str]]]:
    """Answers nothing until the test ends; yields its port and the ids that arrived."""
    port, release = free_port(), asyncio.Event()
    arrived: list[str] = []

    async def hang(request: web.Request) -> web.Response:
        arrived.append(request.headers.get("webhook-id", ""))
        await release.wait()
        return web.Response(status=504)

    app = web.Application()
    app.router.add_post("/hook", hang)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port, arrived
    finally:
        release.set()
        await runner.cleanup()


def config(tmp_path: Path, emulator: int, healthy: int, stuck: int, admin: int) -> Path:
    path = tmp_path / "sftriggerd.yaml"
    path.write_text(f"""
salesforce:
  login_url: http://127.0.0.1:{emulator}
  auth: {{client_id: emulator-client, client_secret: emulator-secret,
          username: admin@emulator.local, password: emulator}}
store: {{url: "sqlite:///{tmp_path}/state.db"}}
triggers:
  - {{name: accounts, object: Account, mode: polling, fields: [Name],
      poll_interval: 1s, poll_delay: 0s, start_from: earliest}}
endpoints:
  - {{name: stuck, url: "http://127.0.0.1:{stuck}/hook", secret: {SECRET},
      timeout: 60s, max_in_flight: {RECORDS}, ordering: none}}
  - {{name: healthy, url: "http://127.0.0.1:{healthy}/hook", secret: {SECRET},
      timeout: 2s, max_in_flight: 16}}
server: {{listen: "127.0.0.1:{admin}", shutdown_grace: 1s}}
logging: {{level: warning, format: json}}
""")
    return path


@pytest.mark.slow
async def test_a_hanging_endpoint_does_not_starve_a_healthy_one(tmp_path: Path) -> None:
    emulator_port, admin_port = free_port(), free_port()
    emulator = await start(
        ["emulator", "--port", str(emulator_port), "--state", str(tmp_path / "org")],
        tmp_path / "emulator.log",
    )
    daemon: Process | None = None
    try:
        await wait_http(f"http://127.0.0.1:{emulator_port}/_emulator/stats")
        async with (
            aiohttp.ClientSession() as http,
            closing_receiver() as healthy,
            hanging_receiver() as (stuck_port, stuck),
        ):
            org = Org(f"http://127.0.0.1:{emulator_port}", http)
            await org.login()
            await org.create_many([{"Name": f"Account {i}"} for i in range(RECORDS)])
            path = config(tmp_path, emulator_port, healthy.port, stuck_port, admin_port)
            daemon = await start(["run", "--config", str(path)], tmp_path / "daemon.log")
            # As many sends to `stuck` hang as a shared pool of 100 could ever hold (all 150
            # arrive with its own pool); the next changes must still reach `healthy` at once.
            await _wait_until(lambda: len(stuck) >= 100, timeout_s=30)
            await healthy.wait_for(RECORDS, timeout_s=10)
            started = time.monotonic()
            await org.create_many([{"Name": f"Later {i}"} for i in range(LATER)])
            await healthy.wait_for(RECORDS + LATER, timeout_s=10)
            took_s = time.monotonic() - started
            assert await daemon.stop() == 0
            daemon = None
        assert took_s < 5.0
        # Each sent once: none timed out waiting for a connection.
        assert len(healthy.ids) == healthy.unique() == RECORDS + LATER
        assert healthy.bad_signatures == 0
    finally:
        if daemon is not None:
            await daemon.stop(signal.SIGKILL)
        await emulator.stop()


async def _wait_until(check: Callable[[], bool], timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.05)
