"""Where a durable backlog drain spends its CPU, per thread and per function.

    .venv/bin/pip install yappi        # a profiler of every thread; not a dependency
    .venv/bin/python benchmarks/profile_drain.py --events 20000
    .venv/bin/python benchmarks/profile_drain.py --events 10000 --no-profile [--inline-store]

Commits `--events` deliveries into a fresh SQLite store (as benchmarks/delivery.py does),
then drains them with the real Dispatcher to the fast receiver under yappi's CPU clock,
and prints: CPU per delivery in each thread (the event loop's and the store's), and the
functions with the most own CPU time, grouped by the module they live in. Profiling slows
everything by a similar factor; read the shares, not the absolute microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from delivery_stores import sqlite_engine
from delivery_workload import ENDPOINT, bench_event, endpoint_settings, serve

from delivery import committed, delivered, machine
from sftriggerd.delivery import Dispatcher
from sftriggerd.logs import configure_logging
from sftriggerd.metrics import Metrics
from sftriggerd.store.wake_ups import offered_wake_ups

yappi: Any = None  # imported when profiling: a tool, not a dependency


async def drain(url: str, args: argparse.Namespace) -> tuple[float, int]:
    events = [bench_event(number, args.events) for number in range(args.events)]
    with tempfile.TemporaryDirectory() as directory:
        engine = sqlite_engine(Path(directory))
        async with engine.fresh("profile") as store:
            await committed(store, events, args)
            await store.open()
            if args.inline_store:
                inline(store)
            metrics = Metrics()
            hook = endpoint_settings(url, args)
            dispatcher = Dispatcher(store, [hook], metrics, wake_ups=offered_wake_ups(store))
            stopping = asyncio.Event()
            if not args.no_profile:
                yappi.set_clock_type("cpu")
                yappi.start(builtins=True, profile_threads=True)
            started, cpu = time.perf_counter(), time.process_time()
            running = asyncio.create_task(dispatcher.run(stopping))
            await delivered(metrics, [ENDPOINT], len(events))
            while (await store.outbox_counts()).get(ENDPOINT):
                await asyncio.sleep(0.001)
            elapsed = time.perf_counter() - started
            cpu_s = time.process_time() - cpu
            if yappi is not None:
                yappi.stop()
            print(
                f"{len(events)} deliveries: {len(events) / elapsed:,.0f}/s,"
                f" process CPU {cpu_s / len(events) * 1e6:.0f} µs each"
                f" ({'inline store' if args.inline_store else 'store thread'},"
                f" {'unprofiled' if args.no_profile else 'profiled'})"
            )
            stopping.set()
            await running
            await store.close()
    return elapsed, len(events)


def inline(store: object) -> None:
    """An experiment, never the daemon's way: the store's statements run on the event loop's
    thread (no hand-off, no second thread taking the interpreter lock), so the difference
    to the threaded run is what the hand-offs cost."""
    from sftriggerd.store.sqlite.engine import SqliteStore

    assert isinstance(store, SqliteStore)

    async def run_here(work: Any) -> Any:
        assert store._db is not None
        return work(store._db)

    store._run = run_here  # type: ignore[method-assign]


def module_of(path: str) -> str:
    for marker in ("sftriggerd/", "site-packages/", "lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1].rsplit(".", 1)[0]
    return path.rsplit("/", 1)[-1]


def report(elapsed: float, count: int, top: int) -> None:
    threads = {thread.id: thread.name for thread in yappi.get_thread_stats()}
    print(f"machine: {machine()}")
    print(f"drained {count} deliveries in {elapsed:.2f} s under the profiler")
    print("| thread | CPU per delivery (µs, profiled) |")
    print("|---|---|")
    per_thread: dict[int, float] = defaultdict(float)
    functions = yappi.get_func_stats()
    for stat in functions:
        per_thread[stat.ctx_id] += stat.tsub
    for ctx, cpu in sorted(per_thread.items(), key=lambda item: -item[1]):
        print(f"| {threads.get(ctx, ctx)} | {cpu / count * 1e6:.0f} |")
    by_module: dict[str, float] = defaultdict(float)
    for stat in functions:
        by_module[module_of(stat.module)] += stat.tsub
    total = sum(by_module.values()) or 1.0
    print("\n| module | share of own CPU |")
    print("|---|---|")
    for module, cpu in sorted(by_module.items(), key=lambda item: -item[1])[:top]:
        print(f"| {module} | {cpu / total:.1%} |")
    print("\n| function | thread | own CPU per delivery (µs) | calls per delivery |")
    print("|---|---|---|---|")
    for stat in sorted(functions, key=lambda s: -s.tsub)[:top]:
        name = f"{module_of(stat.module)}:{stat.name}"
        print(
            f"| {name} | {threads.get(stat.ctx_id, stat.ctx_id)} |"
            f" {stat.tsub / count * 1e6:.1f} | {stat.ncall / count:.2f} |"
        )


def calls(count: int, top: int) -> None:
    """How often each of the daemon's own functions runs per delivery: batching shows here."""
    threads = {thread.id: thread.name for thread in yappi.get_thread_stats()}
    ours = [s for s in yappi.get_func_stats() if "sftriggerd/" in s.module]
    print("\n| daemon function | thread | calls per delivery |")
    print("|---|---|---|")
    for stat in sorted(ours, key=lambda s: -s.ncall)[:top]:
        name = f"{module_of(stat.module)}:{stat.name}"
        print(f"| {name} | {threads.get(stat.ctx_id, stat.ctx_id)} | {stat.ncall / count:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--ordering", choices=("per_record", "none"), default="per_record")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--inline-store", action="store_true", help="experiment: SQL on the loop's thread"
    )
    parser.add_argument("--no-profile", action="store_true", help="CPU totals only")
    args = parser.parse_args()
    if not args.no_profile:
        global yappi
        import yappi  # type: ignore[import-not-found,no-redef]
    configure_logging("warning", stream=sys.stderr)
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    receiver = context.Process(target=serve, args=(theirs,), daemon=True)
    receiver.start()
    try:
        port = ours.recv()
        elapsed, count = asyncio.run(drain(f"http://127.0.0.1:{port}/hook", args))
        if not args.no_profile:
            report(elapsed, count, args.top)
            calls(count, args.top)
    finally:
        receiver.terminate()
        receiver.join()


if __name__ == "__main__":
    main()
