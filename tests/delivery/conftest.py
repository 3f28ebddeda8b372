"""A real local webhook receiver, a real SQLite store and a dispatcher run, for the
delivery integration tests."""

from __future__ import annotations

import asyncio
import base64
import itertools
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sftriggerd.config.settings import EndpointSettings, RetrySettings
from sftriggerd.delivery import Dispatcher
from sftriggerd.store.records import Checkpoint, DeliveryRow, NewEvent
from sftriggerd.store.sqlite import SqliteStore

SECRET = "whsec_" + base64.b64encode(b"delivery-tests-key-0123456789ab").decode()
MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class Arrival:
    event_id: str
    attempt: int  # 1 for the first request with this webhook-id
    headers: dict[str, str]
    body: bytes
    at: float  # wall clock, comparable with the store's times


Respond = Callable[[Arrival], Awaitable[web.StreamResponse]]


async def ok(arrival: Arrival) -> web.StreamResponse:
    return web.Response(status=204)


@dataclass
class Receiver:
    """Answers each webhook with `respond`; records arrivals and the concurrency seen."""

    respond: Respond = ok
    arrivals: list[Arrival] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    hang_until: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    def ids(self) -> list[str]:
        return [arrival.event_id for arrival in self.arrivals]

    def of(self, event_id: str) -> list[Arrival]:
        return [arrival for arrival in self.arrivals if arrival.event_id == event_id]

    async def hang(self) -> web.StreamResponse:
        """An endpoint that never answers (until the test ends)."""
        await self.hang_until.wait()
        return web.Response(status=504)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        event_id = request.headers.get("webhook-id", "")
        arrival = Arrival(
            event_id=event_id,
            attempt=len(self.of(event_id)) + 1,
            headers=dict(request.headers),
            body=body,
            at=time.time(),
        )
        self.arrivals.append(arrival)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await self.respond(arrival)
        finally:
            self.in_flight -= 1


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hooks = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hooks.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    hooks.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield hooks
    finally:
        hooks.hang_until.set()
        await runner.cleanup()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    engine = SqliteStore(tmp_path / "state.db")
    await engine.open()
    try:
        yield engine
    finally:
        await engine.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def unused_url() -> str:
    """A URL where nothing listens: the port was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def endpoint(url: str, **overrides: Any) -> EndpointSettings:
    schedule = overrides.pop("schedule", (100 * MS,))
    max_age = overrides.pop("max_age", timedelta(days=1))
    fields: dict[str, Any] = {
        "name": "hook",
        "url": url,
        "secret": SECRET,
        "timeout": timedelta(seconds=2),
        "retry": RetrySettings(schedule=schedule, max_age=max_age),
        **overrides,
    }
    return EndpointSettings.model_validate(fields)


_positions = itertools.count(1)


def new_event(name: str, record: str | None = None, ordered: bool = True) -> NewEvent:
    return NewEvent(
        event_id=name,
        record_id=record or f"rec-{name}",
        occurred_at=datetime.now(UTC) - timedelta(seconds=1),
        body=f'{{"id":"{name}"}}'.encode(),
        endpoints=("hook",),
        ordered_endpoints=frozenset({"hook"}) if ordered else frozenset(),
    )


async def enqueue(store: SqliteStore, *events: NewEvent) -> None:
    position = next(_positions)
    await store.ingest("t", events, Checkpoint(trigger="t", position={"n": position}))


async def row(store: SqliteStore, event_id: str) -> DeliveryRow:
    [found] = [r for r in await store.list_deliveries(limit=1000) if r.event_id == event_id]
    return found


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout_s}s")
        await asyncio.sleep(0.01)


@asynccontextmanager
async def running(dispatcher: Dispatcher) -> AsyncIterator[asyncio.Event]:
    """Runs the dispatcher; on leaving, stops it and waits for its drain."""
    stopping = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stopping))
    try:
        yield stopping
    finally:
        stopping.set()
        await asyncio.wait_for(task, timeout=10)
