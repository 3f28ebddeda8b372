"""What every leg of `delivery.py` shares: the receiver (run in a process of its own), the
events and the endpoint they go to, and the figures a leg yields."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection

from aiohttp import web

from sftriggerd.config.settings import EndpointSettings, RetrySettings
from sftriggerd.events.model import Event, event_id

TRIGGER = "bench"
ENDPOINT = "bench"
SECRET = "whsec_YmVuY2htYXJrLXNlY3JldC1rZXktMDEyMzQ1Njc4OQ=="


# --- the receiver, in its own process -------------------------------------------------


def serve(conn: Connection) -> None:
    """Runs the receiver until terminated; sends its port through `conn` first."""
    asyncio.run(receive(conn.send))


async def receive(announce: Callable[[int], object], stop_after: int = 0) -> None:
    """Answers POSTs to /hook with 204 until terminated, or until `stop_after` of them (0:
    no limit); announces its port first."""
    received = 0
    enough = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        nonlocal received
        await request.read()
        if "webhook-id" not in request.headers:
            return web.Response(status=400)
        received += 1
        if received == stop_after:
            enough.set()
        return web.Response(status=204)

    async def count(request: web.Request) -> web.Response:
        return web.json_response({"received": received})

    app = web.Application()
    app.router.add_post("/hook", hook)
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


def endpoint_settings(url: str, args: argparse.Namespace) -> EndpointSettings:
    return EndpointSettings.model_validate(
        {
            "name": ENDPOINT,
            "url": url,
            "secret": SECRET,
            "timeout": timedelta(seconds=10),
            "max_in_flight": args.concurrency,
            "ordering": args.ordering,
            "retry": RetrySettings(schedule=(timedelta(seconds=1),), max_age=timedelta(hours=1)),
        }
    )


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
        p50, p99 = percentile(self.latencies_s, 0.50), percentile(self.latencies_s, 0.99)
        return (
            f"{what}: {self.count} in {self.elapsed_s:.2f} s = {self.rate:,.0f}/s;"
            f" latency p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms;"
            f" CPU {self.cpu_us:.0f} µs each"
        )
