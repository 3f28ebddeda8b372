"""What `backlog.py` runs on: the store of a million pending deliveries (built through the
store's own API, cached), a gated receiver in a process of its own, the daemon's memory read
from /proc, and timed GETs against its admin server."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import aiohttp
from delivery_workload import TRIGGER, bench_event, endpoint_settings, receive

from sftriggerd.ingest import Ingest
from sftriggerd.metrics import Metrics
from sftriggerd.store.records import Checkpoint
from sftriggerd.store.sqlite import SqliteStore
from sftriggerd.store.sqlite.migrations import MIGRATIONS

# Events per store.ingest call: Ingest splits them into its own parts (CHUNK_EVENTS), each
# one transaction, exactly as a source's batch is written.
BUILD_BATCH = 5000


# --- the store -------------------------------------------------------------------------


async def build_store(path: Path, pending: int, args: argparse.Namespace) -> None:
    """A fresh store holding `pending` events, each with one pending delivery to the
    benchmark endpoint: written by `Ingest` (the daemon's own path from a source to the
    store), so the rows are what the daemon writes, only not one event at a time."""
    store = SqliteStore(path)
    await store.open()
    try:
        ingest = Ingest(store, [endpoint_settings("http://127.0.0.1:9/hook", args)], Metrics())
        for first in range(0, pending, BUILD_BATCH):
            numbers = range(first, min(pending, first + BUILD_BATCH))
            events = [bench_event(number, pending) for number in numbers]
            checkpoint = Checkpoint(trigger=TRIGGER, position={"replay_id": numbers[-1]})
            await ingest(TRIGGER, events, checkpoint)
    finally:
        await store.close()


def cached_store(pending: int, args: argparse.Namespace) -> Path:
    """The built store for this many pending deliveries, kept under the temp dir."""
    cache = Path(tempfile.gettempdir()) / "sftriggerd-backlog"
    cache.mkdir(exist_ok=True)
    # Keyed by the schema's text too: a store made by other code is not the one to measure.
    schema = hashlib.sha256("".join(MIGRATIONS).encode()).hexdigest()[:10]
    path = cache / f"pending-{pending}-{args.ordering}-schema{len(MIGRATIONS)}-{schema}.db"
    if not (args.reuse and path.exists()):
        building = path.with_suffix(".building")
        for leftover in (building, Path(f"{building}-wal"), Path(f"{building}-shm")):
            leftover.unlink(missing_ok=True)
        asyncio.run(build_store(building, pending, args))
        building.replace(path)
    return path


def working_copy(cached: Path, directory: Path) -> Path:
    """The daemon drains its store: it gets a copy, the cached one stays full."""
    copy = directory / "store.db"
    shutil.copyfile(cached, copy)
    return copy


# --- the receiver: holds every POST until opened, then answers 204 ---------------------


def serve_gated(conn: Connection) -> None:
    # Closed, a POST waits: the daemon's in-flight slots fill and it idles, with no attempt
    # failing (the endpoint's timeout is longer than the idle phase).
    asyncio.run(receive(conn.send, gated=True))


# --- the daemon's memory ---------------------------------------------------------------


def memory_mb(pid: int) -> tuple[float, float]:
    """Resident set now and its high-water mark, MB (VmRSS, VmHWM)."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


@dataclass
class RssSamples:
    values_mb: list[float]

    @property
    def mean_mb(self) -> float:
        return statistics.fmean(self.values_mb)

    @property
    def max_mb(self) -> float:
        return max(self.values_mb)


async def sample_rss(pid: int, every_s: float, until: Callable[[], bool]) -> RssSamples:
    samples = RssSamples([memory_mb(pid)[0]])
    while not until():
        await asyncio.sleep(every_s)
        samples.values_mb.append(memory_mb(pid)[0])
    return samples


# --- admin GETs ------------------------------------------------------------------------

# What the status page and the deliveries API are asked, by name.
PROBES = {
    "GET /": "/",
    "GET /api/deliveries": "/api/deliveries",
    "GET /api/deliveries?endpoint=": "/api/deliveries?endpoint=bench",
    "GET /api/deliveries?status=pending": "/api/deliveries?status=pending",
    "GET /api/deliveries?status=delivered": "/api/deliveries?status=delivered",
    "GET /api/deliveries?status=dead": "/api/deliveries?status=dead",
    "GET /api/deliveries?endpoint=&status=pending": (
        "/api/deliveries?endpoint=bench&status=pending"
    ),
}


@dataclass(frozen=True)
class Latency:
    median_ms: float
    max_ms: float


async def probe_all(http: aiohttp.ClientSession, admin: str, tries: int) -> dict[str, Latency]:
    """Each probe `tries` times in a row; one request at a time."""
    found: dict[str, Latency] = {}
    for name, path in PROBES.items():
        timings: list[float] = []
        for _ in range(tries):
            started = time.perf_counter()
            async with http.get(admin + path) as answer:
                await answer.read()
                if answer.status != 200:
                    raise RuntimeError(f"{path} answered {answer.status}")
            timings.append((time.perf_counter() - started) * 1000)
        found[name] = Latency(round(statistics.median(timings), 1), round(max(timings), 1))
    return found
