"""A real local webhook receiver on a free loopback port: it answers each request with a
chosen handler and records every arrival."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web


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


def unused_url() -> str:
    """A URL where nothing listens: the port was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"
