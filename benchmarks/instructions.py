"""Instructions per delivery for each part of durable delivery, counted under callgrind.

The work behind the rates of benchmarks/delivery.py, without this shared VM's timing noise.

    .venv/bin/python benchmarks/instructions.py            # needs valgrind

Each leg runs in a child process under callgrind twice, with --small and --large events; the
difference over the difference in events is the leg's work per event, with start-up, imports
and warm-up cancelled out. Callgrind runs a process's threads one at a time and counts them
all, so the store's thread is in; waiting is not work and is not counted, and neither is the
kernel's share of a system call. Legs, against a receiver in another process:

- events, raw: build and sign the bodies; then also POST them (plain aiohttp, --concurrency);
- claims, memory: build the claims; then also deliver them with the real dispatcher fed
  from memory (no store);
- committed, store, backlog: ingest them into a fresh SQLite store; then also claim and
  record them all (no HTTP); or deliver them all with the real dispatcher;
- receiver: the receiver itself, under callgrind, answering --small and --large POSTs.

Then the budget: on a machine where the receiver shares the cores, durable delivery at
--target of the raw rate (80 %) leaves so many instructions for what it adds to a POST.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from delivery_memory import MemoryOutbox, memory_claims
from delivery_stores import sqlite_engine
from delivery_workload import bench_event, endpoint_settings, receive

from delivery import committed, post_all, signed_requests, store_alone
from sftriggerd.delivery import Dispatcher
from sftriggerd.events.model import Event
from sftriggerd.ingest import Ingest
from sftriggerd.logs import configure_logging
from sftriggerd.metrics import Metrics
from sftriggerd.store.memory import MemoryStore
from sftriggerd.store.records import Claim, Outcome
from sftriggerd.store.sqlite import SqliteStore

LEGS = ("events", "raw", "claims", "memory", "committed", "store", "backlog")
_COLLECTED = re.compile(r"Collected : (\d+)")


# --- the legs, each in a child process under callgrind ---------------------------------


class _CountedSqlite(SqliteStore):
    """Says when every outcome is recorded: waiting without polling, whose cost would grow
    with callgrind's slowed-down clock."""

    def __init__(self, path: Path, expected: int) -> None:
        super().__init__(path)
        self._expected = expected
        self._recorded = 0
        self.all_recorded = asyncio.Event()

    async def record_outcomes(self, outcomes: Sequence[tuple[Claim, Outcome]]) -> list[bool]:
        kept = await super().record_outcomes(outcomes)
        self._recorded += len(outcomes)
        if self._recorded >= self._expected:
            self.all_recorded.set()
        return kept


async def _deliver_all(
    store: MemoryOutbox | _CountedSqlite, url: str, args: argparse.Namespace
) -> None:
    stopping = asyncio.Event()
    dispatcher = Dispatcher(store, [endpoint_settings(url, args)], Metrics())
    running = asyncio.create_task(dispatcher.run(stopping))
    await store.all_recorded.wait()
    stopping.set()
    await running


async def run_leg(leg: str, url: str, events: list[Event], args: argparse.Namespace) -> None:
    probe = Ingest(MemoryStore(), [endpoint_settings(url, args)], Metrics())
    if leg in ("events", "raw"):
        requests = signed_requests(url, events, probe, args)
        if leg == "raw":
            await post_all(url, requests, args.concurrency)
    elif leg in ("claims", "memory"):
        claims = memory_claims(events, probe)
        if leg == "memory":
            memory = MemoryOutbox(claims)
            await memory.open()
            try:
                await _deliver_all(memory, url, args)
            finally:
                await memory.close()
    else:
        with tempfile.TemporaryDirectory() as directory:
            if leg == "store":  # commits the backlog itself, then claims and records it
                await store_alone(sqlite_engine(Path(directory)), events, args)
                return
            path = Path(directory) / "leg.db"
            await committed(SqliteStore(path), events, args)
            if leg == "backlog":
                store = _CountedSqlite(path, len(events))
                await store.open()
                try:
                    await _deliver_all(store, url, args)
                finally:
                    await store.close()


def leg_main(args: argparse.Namespace) -> None:
    configure_logging("warning", stream=sys.stderr)
    if args.leg == "receiver":
        asyncio.run(receive(lambda port: print(port, flush=True), stop_after=args.events))
        return
    events = [bench_event(number, args.events) for number in range(args.events)]
    asyncio.run(run_leg(args.leg, f"http://127.0.0.1:{args.port}/hook", events, args))


# --- the parent: run the legs, subtract, print ------------------------------------------


def _callgrind(log: Path) -> list[str]:
    return [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        f"--log-file={log}",
        sys.executable,
        __file__,
    ]


def _collected(log: Path) -> int:
    found = _COLLECTED.search(log.read_text())
    if found is None:
        raise SystemExit(f"callgrind printed no count; see {log}")
    return int(found.group(1))


def _leg_options(args: argparse.Namespace, events: int) -> list[str]:
    return ["--events", str(events), "--concurrency", str(args.concurrency)]


def count_leg(leg: str, events: int, port: int, args: argparse.Namespace, work: Path) -> int:
    log = work / f"{leg}-{events}.log"
    command = [*_callgrind(log), "--leg", leg, "--port", str(port), *_leg_options(args, events)]
    subprocess.run(command, check=True)
    return _collected(log)


def count_receiver(events: int, args: argparse.Namespace, work: Path) -> int:
    """The receiver under callgrind, sent the same signed bodies as the legs send."""
    log = work / f"receiver-{events}.log"
    command = [*_callgrind(log), "--leg", "receiver", *_leg_options(args, events)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as receiver:
        assert receiver.stdout is not None
        url = f"http://127.0.0.1:{int(receiver.stdout.readline())}/hook"
        probe = Ingest(MemoryStore(), [endpoint_settings(url, args)], Metrics())
        events_sent = [bench_event(number, events) for number in range(events)]
        asyncio.run(post_all(url, signed_requests(url, events_sent, probe, args), args.concurrency))
    return _collected(log)


def per_event(small: int, large: int, args: argparse.Namespace) -> float:
    events: int = args.large - args.small
    return (large - small) / events


def report(work: dict[str, float], args: argparse.Namespace) -> None:
    post = work["raw"] - work["events"]
    dispatcher = work["memory"] - work["claims"] - post
    store = work["store"] - work["committed"]
    durable = work["backlog"] - work["committed"]
    receiver = work["receiver"]
    print(f"instructions per delivery ({args.small} and {args.large} events, callgrind):")
    print(f"  raw aiohttp POST, client side : {post / 1e3:7.0f} k")
    print(f"  the receiver, per POST        : {receiver / 1e3:7.0f} k")
    print(f"  the dispatcher beyond the POST: {dispatcher / 1e3:7.0f} k (fed from memory)")
    print(f"  the store, claim + record     : {store / 1e3:7.0f} k (no HTTP)")
    print(
        f"  durable delivery, all of it   : {durable / 1e3:7.0f} k"
        f" = POST + {(durable - post) / 1e3:.0f} k"
    )
    print(f"one process, CPU-bound: at most {post / durable:.0%} of the raw rate")
    # Raw runs client and receiver on a core each, at the pace of the busier one.
    slower = max(post, receiver)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    on_loop = slower / args.target - post
    all_cores = (cores or 1) * slower / args.target - post - receiver
    print(
        f"at {args.target:.0%} of raw on these {cores} cores, with the receiver on them too,"
        f" what durable delivery adds to a POST may cost {all_cores / 1e3:.0f} k across"
        f" all cores, and at most {on_loop / 1e3:.0f} k on the event loop's thread;"
        f" it adds {(durable - post) / 1e3:.0f} k"
    )


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64, help="max_in_flight")
    parser.add_argument("--target", type=float, default=0.8, help="share of raw to budget for")
    # A child's own arguments.
    parser.add_argument("--leg", choices=(*LEGS, "receiver"), help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    # What delivery.py's helpers read.
    parser.set_defaults(ordering="per_record", batch=100, rate=0.0, records=0, dir=None)
    return parser.parse_args(argv)


def main() -> None:
    args = parse(sys.argv[1:])
    if args.leg:
        leg_main(args)
        return
    if subprocess.run(["valgrind", "--version"], capture_output=True).returncode != 0:
        raise SystemExit("needs valgrind (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        receiver = subprocess.Popen(
            [sys.executable, __file__, "--leg", "receiver", "--events", str(10**9)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert receiver.stdout is not None
            port = int(receiver.stdout.readline())
            counts: dict[str, float] = {}
            for leg in LEGS:
                small = count_leg(leg, args.small, port, args, work)
                large = count_leg(leg, args.large, port, args, work)
                counts[leg] = per_event(small, large, args)
                print(f"  {leg}: {counts[leg] / 1e3:.0f} k per event", file=sys.stderr)
        finally:
            receiver.terminate()
            receiver.wait()
        small = count_receiver(args.small, args, work)
        counts["receiver"] = per_event(small, count_receiver(args.large, args, work), args)
    report(counts, args)


if __name__ == "__main__":
    main()
