"""Durable delivery against the raw HTTP ceiling, on this machine.

    .venv/bin/python benchmarks/delivery.py --events 5000
    .venv/bin/python benchmarks/delivery.py --events 5000 --store postgresql \
        --postgres-url postgresql://postgres@127.0.0.1:5432/postgres

Starts a fast webhook receiver (aiohttp, answering 204) in a process of its own, so the
client and the server do not share one event loop. Then, against that receiver:

- raw: plain aiohttp POSTs of the same bodies with the same headers (signed beforehand, not
  timed), `--concurrency` at a time: what this client can push through HTTP at all;
- durable, live: the real thing. A source task commits the events through `Ingest` in
  batches of `--batch` (each with its checkpoint) into a fresh SQLite store (WAL,
  synchronous=FULL), while the real `Dispatcher` claims, signs, POSTs and records every
  outcome, with the endpoint's `max_in_flight` set to `--concurrency`. Timed from the first
  ingest to the last committed outcome; latency is per delivery, from the start of its
  ingest to its 2xx (the store's own `created_at` and `finished_at`). Unpaced, the source
  outruns delivery and the latency is mostly queueing; `--rate` paces it;
- durable, backlog: every event committed first, then only the dispatcher's drain is
  timed (claim, sign, POST, record), the number to hold against the raw ceiling;
- where the gap lies: the same dispatcher fed from memory (claims prebuilt, outcomes
  dropped: its own ceiling without any store), and the store alone (the backlog claimed and
  recorded through the store, no HTTP).

With `--store postgresql` every durable leg runs on SQLite and then on PostgreSQL (each leg
in a database of its own, created on the server `--postgres-url` reaches and dropped after
it), and live and backlog run once more with `--replicas` dispatching processes on one
database, each with its own store and woken by the store's notifications, as replicas of the
daemon run (see delivery_stores).

With `--endpoints N` there are N endpoints, each a route of its own on the receiver and each
subscribed to every trigger, so every event fans out to N deliveries (the raw leg POSTs each
body to every route as well); the store alone, the dispatcher fed from memory and the
PostgreSQL replicas keep one endpoint. Latencies are per delivery: p50, p95, p99 and max.

`--loop uvloop` runs this process, the receiver's and the replicas' on uvloop instead of
asyncio's own loop (uvloop must be importable, e.g. from a `pip install --target` directory
on PYTHONPATH).

It prints the machine, the rates and their ratios. No assertions: figures for people.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import aiohttp
from delivery_memory import dispatcher_alone
from delivery_stores import Engine, postgres_engine, replicas_leg, sqlite_engine
from delivery_workload import (
    LOOPS,
    TRIGGER,
    Figures,
    against_receiver,
    bench_event,
    endpoint_settings,
    endpoints_settings,
)

from sftriggerd.delivery import Dispatcher
from sftriggerd.delivery.signing import webhook_headers
from sftriggerd.events.model import Event
from sftriggerd.ingest import Ingest
from sftriggerd.logs import configure_logging
from sftriggerd.metrics import Metrics
from sftriggerd.store.base import Store
from sftriggerd.store.memory import MemoryStore
from sftriggerd.store.records import Checkpoint, Delivered
from sftriggerd.store.wake_ups import offered_wake_ups

WARM_UP_POSTS = 500


# --- raw: plain POSTs ------------------------------------------------------------------


async def post_all(
    url: str,
    requests: Sequence[tuple[dict[str, str], bytes]],
    concurrency: int,
    urls: Sequence[str] = (),
) -> Figures:
    """POSTs every request to `url`, or, given `urls`, request i to urls[i % len(urls)]."""
    latencies: list[float] = []
    targets = urls or [url]
    queue = ((targets[index % len(targets)], *request) for index, request in enumerate(requests))

    async def poster(http: aiohttp.ClientSession) -> None:
        for url, headers, body in queue:
            started = time.perf_counter()
            async with http.post(url, data=body, headers=headers) as response:
                await response.read()
                if not 200 <= response.status < 300:
                    raise RuntimeError(f"receiver answered {response.status}")
            latencies.append(time.perf_counter() - started)

    async with aiohttp.ClientSession() as http:
        started, cpu = time.perf_counter(), time.process_time()
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(poster(http))
        elapsed, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    return Figures(len(requests), elapsed, latencies, cpu_s)


def signed_requests(
    url: str, events: Sequence[Event], ingest: Ingest, args: argparse.Namespace
) -> list[tuple[dict[str, str], bytes]]:
    """Every event's body and headers, as the dispatcher would send them."""
    key = endpoint_settings(url, args).secret_key
    requests = []
    for event in events:
        body = ingest.prepare(event).body
        requests.append((webhook_headers(event.id, int(time.time()), body, key), body))
    return requests


async def raw_ceiling(
    url: str, events: Sequence[Event], ingest: Ingest, args: argparse.Namespace
) -> Figures:
    """Each body to every endpoint's route, the fan-out the durable legs do."""
    urls = [str(hook.url) for hook in endpoints_settings(url, args)]
    requests = [
        request for request in signed_requests(url, events, ingest, args) for _ in range(len(urls))
    ]
    await post_all(url, requests[:WARM_UP_POSTS], args.concurrency, urls)
    return await post_all(url, requests, args.concurrency, urls)


# --- durable: ingest, dispatch, record -------------------------------------------------


async def feed(ingest: Ingest, events: Sequence[Event], args: argparse.Namespace) -> float:
    """Commits the events in batches, as a source does; returns when the last one is in."""
    started = time.perf_counter()
    for first in range(0, len(events), args.batch):
        batch = events[first : first + args.batch]
        checkpoint = Checkpoint(trigger=TRIGGER, position={"replay_id": first + len(batch)})
        await ingest(TRIGGER, batch, checkpoint)
        if args.rate:
            # Paced: batch n is not committed before n * batch / rate seconds.
            ahead_s = (first + len(batch)) / args.rate - (time.perf_counter() - started)
            await asyncio.sleep(max(ahead_s, 0.0))
    return time.perf_counter() - started


async def committed(store: Store, events: Sequence[Event], args: argparse.Namespace) -> None:
    """Fills the (fresh) store with every event's delivery, pending."""
    await store.open()
    try:
        await feed(
            Ingest(store, endpoints_settings("http://127.0.0.1:9/hook", args), Metrics()),
            events,
            args,
        )
    finally:
        await store.close()


async def delivered(metrics: Metrics, names: Sequence[str], count: int) -> None:
    """Until the endpoints `names` have `count` deliveries between them."""

    def so_far() -> float:
        return sum(
            metrics.registry.get_sample_value(
                "sftriggerd_deliveries_total", {"endpoint": name, "outcome": "delivered"}
            )
            or 0
            for name in names
        )

    while so_far() < count:
        await asyncio.sleep(0.002)


async def durable(
    url: str, events: Sequence[Event], args: argparse.Namespace, engine: Engine, backlog: bool
) -> tuple[Figures, float]:
    """Live (`backlog` False): the source commits while the dispatcher delivers, timed from
    the first ingest. Backlog: everything is committed first, and only the dispatcher's
    drain is timed. Returns the figures and how long ingesting took."""
    async with engine.fresh("backlog" if backlog else "live") as store:
        return await _durable(url, events, args, engine, store, backlog)


async def _durable(
    url: str,
    events: Sequence[Event],
    args: argparse.Namespace,
    engine: Engine,
    store: Store,
    backlog: bool,
) -> tuple[Figures, float]:
    await store.open()
    metrics = Metrics()
    hooks = endpoints_settings(url, args)
    deliveries = len(events) * len(hooks)
    stopping = asyncio.Event()
    try:
        # As the daemon builds it: listening too, where the engine offers wake-ups.
        dispatcher = Dispatcher(store, hooks, metrics, wake_ups=offered_wake_ups(store))
        ingest = Ingest(store, hooks, metrics, notify=dispatcher.notify)
        ingest_s = await feed(ingest, events, args) if backlog else 0.0
        started, cpu = time.perf_counter(), time.process_time()
        running = asyncio.create_task(dispatcher.run(stopping))
        if not backlog:
            ingest_s = await feed(ingest, events, args)
        await delivered(metrics, [hook.name for hook in hooks], deliveries)
        while await store.outbox_counts():
            await asyncio.sleep(0.001)  # the last outcomes' commit
        elapsed, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        stopping.set()
        await running
        latencies = await engine.latencies(store)
    finally:
        await store.close()
    return Figures(deliveries, elapsed, latencies, cpu_s), ingest_s


# --- the store alone ---------------------------------------------------------------------


async def store_alone(engine: Engine, events: Sequence[Event], args: argparse.Namespace) -> Figures:
    """Claims and records every delivery of a committed backlog, no HTTP."""
    async with engine.fresh("store-alone") as store:
        await committed(store, events, args)
        await store.open()
        lease = timedelta(seconds=30)
        try:
            started, cpu = time.perf_counter(), time.process_time()
            done = 0
            for hook in endpoints_settings("http://127.0.0.1:9/hook", args):
                while claims := await store.claim_due(hook.name, args.concurrency, lease):
                    outcomes = [(claim, Delivered(status=204)) for claim in claims]
                    await store.record_outcomes(outcomes)
                    done += len(claims)
            elapsed, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        finally:
            await store.close()
    return Figures(done, elapsed, [0.0], cpu_s)


# --- the run ---------------------------------------------------------------------------


def machine() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"nproc {cores}, Python {platform.python_version()}, {platform.platform()},"
        f" aiohttp {aiohttp.__version__}, SQLite {sqlite3.sqlite_version}"
    )


async def received_count(url: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(url.replace("/hook", "/count")) as answer:
        return int((await answer.json())["received"])


async def engine_legs(
    url: str, events: Sequence[Event], args: argparse.Namespace, engine: Engine
) -> Legs:
    live, ingest_s = await durable(url, events, args, engine, False)
    drain, _ = await durable(url, events, args, engine, True)
    return Legs(live, drain, ingest_s, await store_alone(engine, events, args))


async def two_replicas(
    url: str, events: Sequence[Event], args: argparse.Namespace
) -> tuple[Figures, Figures]:
    """Live and backlog with `--replicas` dispatching processes on one PostgreSQL database."""
    hook = endpoint_settings(url, args)

    async def feed_all(store: Store) -> float:
        return await feed(Ingest(store, [hook], Metrics()), events, args)

    legs = []
    for backlog in (False, True):
        leg = await replicas_leg(
            args.postgres_url, hook, args.replicas, backlog, feed_all, len(events), args.loop
        )
        legs.append(Figures(len(events), leg.elapsed_s, leg.latencies_s, leg.cpu_s))
    return legs[0], legs[1]


@dataclass(frozen=True)
class Legs:
    live: Figures
    drain: Figures
    ingest_s: float
    store_alone: Figures


async def run(url: str, args: argparse.Namespace) -> None:
    events = [bench_event(number, args.records or args.events) for number in range(args.events)]
    probe = Ingest(MemoryStore(), [endpoint_settings(url, args)], Metrics())
    sizes = [len(probe.prepare(event).body) for event in events[:100]]
    print(f"machine: {machine()}")
    print(
        f"workload: {args.events} events, body ~{statistics.mean(sizes):.0f} B,"
        f" max_in_flight {args.concurrency}, ordering {args.ordering},"
        f" ingest batch {args.batch}, {f'rate {args.rate}/s' if args.rate else 'unpaced'},"
        f" {args.endpoints} endpoint(s), loop {args.loop}"
    )
    raw = await raw_ceiling(url, events, probe, args)
    before = await received_count(url)
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        engines = [sqlite_engine(Path(directory))]
        if args.store == "postgresql":
            engines.append(postgres_engine(args.postgres_url))
        legs = {engine.name: await engine_legs(url, events, args, engine) for engine in engines}
        replicas = await two_replicas(url, events, args) if args.store == "postgresql" else None
        sent = await received_count(url) - before
        alone = await dispatcher_alone(url, events, probe, args)
    print(raw.line("raw POSTs       "))
    for name, leg in legs.items():
        print(f"{name}:")
        print(leg.live.line("  durable, live   ") + " (ingest to 2xx)")
        print(leg.drain.line("  durable, backlog") + " (all committed first; the drain alone)")
        print(
            f"  the store alone (claim + record, no HTTP) {leg.store_alone.rate:,.0f}/s,"
            f" CPU {leg.store_alone.cpu_us:.0f} µs each; live ingest took {leg.ingest_s:.2f} s"
        )
        paced = " (paced by --rate, not a ceiling)" if args.rate else ""
        print(
            f"  ratio durable/raw: {leg.live.rate / raw.rate:.0%} live{paced},"
            f" {leg.drain.rate / raw.rate:.0%} backlog drain"
        )
    deliveries = 2 * len(legs) * args.endpoints + (2 if replicas else 0)
    if replicas is not None:
        live, drain = replicas
        print(f"postgresql, {args.replicas} dispatching processes (CPU: theirs, summed):")
        print(live.line("  durable, live   ") + f" = {live.rate / raw.rate:.0%} of raw")
        print(drain.line("  durable, backlog") + f" = {drain.rate / raw.rate:.0%} of raw")
    print(
        f"the receiver saw {sent} POSTs for {deliveries} x {args.events} deliveries;"
        f" the dispatcher fed from memory (no store) {alone.rate:,.0f}/s"
        f" = {alone.rate / raw.rate:.0%} of raw, CPU {alone.cpu_us:.0f} µs each"
    )


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64, help="max_in_flight")
    parser.add_argument("--batch", type=int, default=100, help="events per ingest")
    parser.add_argument("--rate", type=float, default=0.0, help="pace ingest (events/s)")
    parser.add_argument("--records", type=int, default=0, help="distinct records (0: one each)")
    parser.add_argument("--ordering", choices=("per_record", "none"), default="per_record")
    parser.add_argument("--dir", default=None, help="where the store file goes (temp dir)")
    parser.add_argument(
        "--store",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="postgresql: also run every durable leg there, and with --replicas processes",
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a server and a database to connect to; each leg creates its own and drops it",
    )
    parser.add_argument("--replicas", type=int, default=2, help="dispatching processes")
    parser.add_argument(
        "--endpoints", type=int, default=1, help="endpoints every event fans out to"
    )
    parser.add_argument(
        "--loop", choices=LOOPS, default="asyncio", help="event loop, here and in the receiver"
    )
    return parser.parse_args(argv)


def main() -> None:
    args = parse(sys.argv[1:])
    configure_logging("info", stream=sys.stderr)
    against_receiver(args.loop, lambda url: run(url, args))


if __name__ == "__main__":
    main()
