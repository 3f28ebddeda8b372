"""What every leg of `delivery.py` shares: the receiver (run in a process of its own), the
events and the endpoint they go to, and the figures a leg yields."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import multiprocessing
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from aiohttp import web

from sftriggerd.config.settings import EndpointSettings, RetrySettings
from sftriggerd.events.model import Event, event_id

TRIGGER = "bench"
ENDPOINT = "bench"
SECRET = "whsec_YmVuY2htYXJrLXNlY3JldC1rZXktMDEyMzQ1Njc4OQ=="
LOOPS = ("asyncio", "uvloop")

T = TypeVar("T")


def run_on(loop: str, main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on the chosen event loop: asyncio's own, or uvloop's (which must be
    importable: `pip install --target DIR uvloop` and DIR on PYTHONPATH will do)."""
    if loop == "asyncio":
        return asyncio.run(main)
    factory = importlib.import_module("uvloop").new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


# --- the receiver, in its own process -------------------------------------------------


def serve(conn: Connection, loop: str = "asyncio") -> None:
    """Runs the receiver until terminated, on `loop`; sends its port through `conn` first."""
    run_on(loop, receive(conn.send))


def against_receiver(loop: str, main: Callable[[str], Coroutine[Any, Any, T]]) -> T:
    """Runs `main(url)` on `loop` against the receiver in a process of its own (spawned, so
    it shares nothing with this one), stopped after."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    receiver = context.Process(target=serve, args=(theirs, loop), daemon=True)
    receiver.start()
    try:
        port = ours.recv()
        return run_on(loop, main(f"http://127.0.0.1:{port}/hook"))
    finally:
        receiver.terminate()
        receiver.join()


async def receive(
    announce: Callable[[int], object], stop_after: int = 0, *, gated: bool = False
) -> None:
    """Answers POSTs to /hook (and /hook/N, the further endpoints of `--endpoints`) with 204
    until terminated, or until `stop_after` of them (0: no limit); announces its port first.
    `gated`: every POST waits until one to /open came."""
    received = 0
    enough = asyncio.Event()
    gate = asyncio.Event()
    if not gated:
        gate.set()

    async def hook(request: web.Request) -> web.Response:
        nonlocal received
        await request.read()
        if "webhook-id" not in request.headers:
            return web.Response(status=400)
        await gate.wait()
        received += 1
        if received == stop_after:
            enough.set()
        return web.Response(status=204)

    async def open_gate(request: web.Request) -> web.Response:
        gate.set()
        return web.Response(status=204)

    async def count(request: web.Request) -> web.Response:
        return web.json_response({"received": received})

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_post("/hook/{endpoint}", hook)
    app.router.add_post("/open", open_gate)
    app.router.add_get("/count", count)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, backlog=1024).start()
    announce(runner.addresses[0][1])
    await enough.wait()
    await runner.cleanup()


# --- the workload ----------------------------------------------------------------------


def bench_event(number: int, records: int) -> Event:
    """A record change shaped like a CDC update: a handful of fields, about 600 bytes."""
    return Event(
        id=event_id(TRIGGER, number),
        trigger=TRIGGER,
        object="Account",
        change="updated",
        record_id=f"001BENCH{number % records:010d}",
        occurred_at=datetime.now(UTC),
        source={"kind": "streaming", "channel": "/data/AccountChangeEvent", "replay_id": number},
        changed_fields=("Name", "Phone", "BillingCity", "AnnualRevenue"),
        record={
            "Id": f"001BENCH{number % records:010d}",
            "Name": f"Benchmark account {number}",
            "Phone": "+1 415 555 0100",
            "BillingCity": "San Francisco",
            "AnnualRevenue": 1_250_000 + number,
            "Industry": "Technology",
        },
        raw={"ChangeEventHeader": {"changeType": "UPDATE", "commitNumber": number}},
    )


def endpoint_settings(url: str, args: argparse.Namespace, name: str = ENDPOINT) -> EndpointSettings:
    return EndpointSettings.model_validate(
        {
            "name": name,
            "url": url,
            "secret": SECRET,
            "timeout": timedelta(seconds=10),
            "max_in_flight": args.concurrency,
            "ordering": args.ordering,
            "retry": RetrySettings(schedule=(timedelta(seconds=1),), max_age=timedelta(hours=1)),
        }
    )


def endpoints_settings(url: str, args: argparse.Namespace) -> list[EndpointSettings]:
    """`--endpoints` of them, each a route of its own on the receiver and subscribed to every
    trigger (no `triggers` list), so every event fans out to all: "bench" at `url` (what a
    single endpoint always was), then "bench-2" at `url`/2 and so on."""
    count = getattr(args, "endpoints", 1)
    return [endpoint_settings(url, args)] + [
        endpoint_settings(f"{url}/{number}", args, f"{ENDPOINT}-{number}")
        for number in range(2, count + 1)
    ]


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass(frozen=True)
class Figures:
    count: int
    elapsed_s: float
    latencies_s: list[float]
    cpu_s: float  # this process's CPU in the timed window, all threads (not the receiver's)

    @property
    def rate(self) -> float:
        return self.count / self.elapsed_s

    @property
    def cpu_us(self) -> float:
        """CPU per delivery, in microseconds."""
        return self.cpu_s / self.count * 1e6

    def line(self, what: str) -> str:
        p50, p95, p99, top = (
            percentile(self.latencies_s, share) * 1000 for share in (0.50, 0.95, 0.99, 1.0)
        )
        return (
            f"{what}: {self.count} in {self.elapsed_s:.2f} s = {self.rate:,.0f}/s;"
            f" latency p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms, max {top:.1f} ms;"
            f" CPU {self.cpu_us:.0f} µs each"
        )
