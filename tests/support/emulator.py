"""A running emulator on a free loopback port, for tests that talk HTTP to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from sftriggerd_emulator.context import EmulatorContext, EmulatorSettings, RecordChange
from sftriggerd_emulator.server import build_app
from tests.support.sfclient import OrgClient


@dataclass
class RunningEmulator:
    url: str
    ctx: EmulatorContext

    @property
    def pubsub_address(self) -> str:
        """`127.0.0.1:PORT` of its Pub/Sub API (plaintext gRPC)."""
        address = self.ctx.pubsub_address
        if address is None:
            raise RuntimeError("this emulator serves no Pub/Sub API (pubsub_port is None)")
        return address


Middleware = Callable[
    [web.Request, Callable[[web.Request], Awaitable[web.StreamResponse]]],
    Awaitable[web.StreamResponse],
]


async def start_emulator(
    settings: EmulatorSettings, middlewares: tuple[Middleware, ...] = ()
) -> tuple[RunningEmulator, web.AppRunner]:
    app, ctx = build_app(settings)
    app.middlewares.extend(middlewares)  # type: ignore[arg-type]
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    if settings.port == 0:
        settings.port = runner.addresses[0][1]
    return RunningEmulator(url=ctx.base_url, ctx=ctx), runner


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    # Pub/Sub on a free port too; a restart with these settings reuses both ports.
    return EmulatorSettings(state_dir=tmp_path / "org", pubsub_port=0)


@pytest.fixture
def emulator_middlewares() -> tuple[Middleware, ...]:
    """aiohttp middlewares in front of the emulator's routes (a network that misbehaves); a
    test module overrides this, as it may `emulator_settings`."""
    return ()


@pytest.fixture
async def emulator(
    emulator_settings: EmulatorSettings, emulator_middlewares: tuple[Middleware, ...]
) -> AsyncIterator[RunningEmulator]:
    running, runner = await start_emulator(emulator_settings, emulator_middlewares)
    try:
        yield running
    finally:
        await runner.cleanup()


@pytest.fixture
async def org(emulator: RunningEmulator, http: aiohttp.ClientSession) -> OrgClient:
    """A REST client logged in as the default admin user."""
    return await OrgClient.login(http, emulator.url)


@pytest.fixture
def record_changes(emulator: RunningEmulator) -> list[RecordChange]:
    """Every RecordChange the org reports from now on, in order."""
    seen: list[RecordChange] = []
    emulator.ctx.org.add_listener(seen.append)
    return seen


@pytest.fixture
async def emulator_starter() -> AsyncIterator[
    Callable[[EmulatorSettings], Awaitable[tuple[RunningEmulator, web.AppRunner]]]
]:
    """Starts emulators on demand (for restarts); stops any still running at the end."""
    runners: list[web.AppRunner] = []

    async def start(settings: EmulatorSettings) -> tuple[RunningEmulator, web.AppRunner]:
        running, runner = await start_emulator(settings)
        runners.append(runner)
        return running, runner

    yield start
    for runner in runners:
        await runner.cleanup()
