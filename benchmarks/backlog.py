"""The daemon on a store holding a million pending deliveries, on this machine.

    .venv/bin/python benchmarks/backlog.py [--pending 1000000] [--reuse] [--json]

Builds a SQLite store of `--pending` events, each with one pending delivery to one endpoint
(through `Ingest` and the store's own API, `BUILD_BATCH` events a call: the rows the daemon
writes, without a source), cached under the temp dir by size so `--reuse` skips the build.
Then starts the real daemon on a copy (`sftriggerd run`: that one endpoint, no triggers)
against a receiver in a process of its own that holds every POST until it is opened, and
answers 204 from then on. It measures:

- ready: from starting the process to the first 200 from /readyz;
- idle: the daemon's resident set (VmRSS, /proc) every 0.5 s for `--idle-seconds`, with the
  receiver closed (the endpoint's `max_in_flight` deliveries wait in flight, nothing fails);
  then each admin GET (the status page, /api/deliveries unfiltered and filtered) `--tries`
  times in a row, median and max;
- draining: the receiver opened, deliveries per second over `--drain-seconds` (or until
  all are delivered), the resident set every 0.5 s, and the same GETs once more meanwhile;
- peak: the resident set's high-water mark (VmHWM) at the end.

It prints the machine and a markdown table, or with `--json` one JSON object whose "rows"
hold every figure as a number. No assertions: figures for people (docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from backlog_rig import (
    PROBES,
    Latency,
    RssSamples,
    cached_store,
    memory_mb,
    probe_all,
    sample_rss,
    serve_gated,
    working_copy,
)
from delivery_workload import ENDPOINT, SECRET

RSS_EVERY_S = 0.5


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def config_text(store: Path, hook_url: str, admin_port: int, args: argparse.Namespace) -> str:
    # The endpoint's timeout outlasts the idle phase: the held POSTs do not fail.
    timeout_s = int(args.idle_seconds * 4 + 60)
    return f"""
salesforce:
  login_url: http://127.0.0.1:9
  auth: {{flow: password, client_id: unused, client_secret: unused,
          username: unused, password: unused}}
store: {{url: "sqlite:///{store}"}}
endpoints:
  - name: {ENDPOINT}
    url: {hook_url}
    secret: {SECRET}
    timeout: {timeout_s}s
    max_in_flight: {args.concurrency}
    ordering: {args.ordering}
    retry: {{schedule: [1s], max_age: 1h}}
server: {{listen: "127.0.0.1:{admin_port}", shutdown_grace: 5s}}
logging: {{level: warning, format: json}}
"""


def daemon_command() -> list[str]:
    return [sys.executable, "-m", "sftriggerd"]


async def wait_ready(
    http: aiohttp.ClientSession, admin: str, daemon: subprocess.Popen[bytes]
) -> None:
    while True:
        if daemon.poll() is not None:
            raise RuntimeError(f"the daemon exited with {daemon.returncode} before it was ready")
        try:
            async with http.get(admin + "/readyz") as answer:
                if answer.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.01)


async def received(http: aiohttp.ClientSession, receiver: str) -> int:
    async with http.get(receiver + "/count") as answer:
        return int((await answer.json())["received"])


async def measure(
    store: Path, receiver: str, scratch: Path, args: argparse.Namespace
) -> dict[str, Any]:
    admin_port = free_port()
    admin = f"http://127.0.0.1:{admin_port}"
    config = scratch / "sftriggerd.yaml"
    config.write_text(config_text(store, receiver + "/hook", admin_port, args))
    log = (scratch / "daemon.log").open("wb")
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        started = time.perf_counter()
        daemon = subprocess.Popen(
            [*daemon_command(), "run", "--config", str(config)], stdout=log, stderr=log
        )
        try:
            await wait_ready(http, admin, daemon)
            ready_s = time.perf_counter() - started
            figures = await idle_and_drain(http, admin, receiver, daemon.pid, args)
        finally:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
                try:
                    await asyncio.to_thread(daemon.wait, 30)
                except subprocess.TimeoutExpired:
                    daemon.kill()  # never leave a daemon behind the benchmark
                    await asyncio.to_thread(daemon.wait)
            log.close()
    return {"ready_s": ready_s, **figures}


async def idle_and_drain(
    http: aiohttp.ClientSession, admin: str, receiver: str, pid: int, args: argparse.Namespace
) -> dict[str, Any]:
    idle_until = time.perf_counter() + args.idle_seconds
    idle_rss = await sample_rss(pid, RSS_EVERY_S, lambda: time.perf_counter() >= idle_until)
    idle_latency = await probe_all(http, admin, args.tries)

    async with http.post(receiver + "/open") as answer:
        answer.raise_for_status()
    drain_started = time.perf_counter()
    draining = True
    sampler = asyncio.create_task(sample_rss(pid, RSS_EVERY_S, lambda: not draining))
    # The GETs a moment into the drain, so they meet it in full flow.
    await asyncio.sleep(min(2.0, args.drain_seconds / 4))
    drain_latency = await probe_all(http, admin, args.tries)
    count = await received(http, receiver)
    while count < args.pending and time.perf_counter() - drain_started < args.drain_seconds:
        await asyncio.sleep(0.05)
        count = await received(http, receiver)
    drain_s = time.perf_counter() - drain_started
    draining = False
    drain_rss: RssSamples = await sampler
    return {
        "idle_rss": idle_rss,
        "drain_rss": drain_rss,
        "peak_rss_mb": memory_mb(pid)[1],
        "drained": count,
        "drain_s": drain_s,
        "latency": {"idle": idle_latency, "draining": drain_latency},
    }


def rows(figures: dict[str, Any]) -> dict[str, float]:
    """Every figure, by name: the table's rows and the JSON's."""
    found: dict[str, float] = {
        "ready (s)": round(figures["ready_s"], 3),
        "RSS idle, mean (MB)": round(figures["idle_rss"].mean_mb, 1),
        "RSS idle, max (MB)": round(figures["idle_rss"].max_mb, 1),
        "RSS draining, mean (MB)": round(figures["drain_rss"].mean_mb, 1),
        "RSS draining, max (MB)": round(figures["drain_rss"].max_mb, 1),
        "RSS peak, VmHWM (MB)": round(figures["peak_rss_mb"], 1),
        "drained": figures["drained"],
        "drain (s)": round(figures["drain_s"], 2),
        "drain rate (/s)": round(figures["drained"] / figures["drain_s"], 1),
    }
    for phase, latencies in figures["latency"].items():
        for name, latency in latencies.items():
            assert isinstance(latency, Latency)
            found[f"{name}, {phase}, median (ms)"] = latency.median_ms
            found[f"{name}, {phase}, max (ms)"] = latency.max_ms
    return found


def machine() -> str:
    cores = len(os.sched_getaffinity(0))
    return (
        f"nproc {cores}, Python {platform.python_version()}, {platform.platform()},"
        f" aiohttp {aiohttp.__version__}, SQLite {sqlite3.sqlite_version}"
    )


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", type=int, default=1_000_000, help="pending deliveries")
    parser.add_argument("--reuse", action="store_true", help="reuse the cached store if built")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--drain-seconds", type=float, default=30.0)
    parser.add_argument("--tries", type=int, default=5, help="GETs per probe and phase")
    parser.add_argument("--concurrency", type=int, default=64, help="max_in_flight")
    parser.add_argument("--ordering", choices=("per_record", "none"), default="per_record")
    parser.add_argument("--dir", default=None, help="where the daemon's copy goes (temp dir)")
    parser.add_argument("--json", action="store_true", help="one JSON object, no table")
    return parser.parse_args(argv)


def main() -> int:
    args = parse(sys.argv[1:])
    building = time.perf_counter()
    cached = cached_store(args.pending, args)
    build_s = time.perf_counter() - building
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    receiver = context.Process(target=serve_gated, args=(theirs,), daemon=True)
    receiver.start()
    try:
        receiver_url = f"http://127.0.0.1:{ours.recv()}"
        with tempfile.TemporaryDirectory(dir=args.dir) as directory:
            store = working_copy(cached, Path(directory))
            figures = asyncio.run(measure(store, receiver_url, Path(directory), args))
    finally:
        receiver.terminate()
        receiver.join()
    found = rows(figures)
    if args.json:
        report = {"machine": machine(), "pending": args.pending, "build_s": round(build_s, 1)}
        print(json.dumps({**report, "rows": found}))
        return 0
    print(f"machine: {machine()}")
    print(
        f"{args.pending:,} pending deliveries to one endpoint (max_in_flight {args.concurrency},"
        f" ordering {args.ordering}); store built or read in {build_s:.1f} s\n"
    )
    print(table(found))
    return 0


def table(found: dict[str, float]) -> str:
    """The figures, then the GETs' latencies one probe a row."""
    lines = ["| figure | value |", "|---|---:|"]
    lines += [f"| {name} | {value:,} |" for name, value in found.items() if "GET" not in name]
    lines += [
        "",
        "| GET (ms) | idle median | idle max | draining median | draining max |",
        "|---|---:|---:|---:|---:|",
    ]
    for probe in PROBES:
        cells = [
            found[f"{probe}, {phase}, {which} (ms)"]
            for phase in ("idle", "draining")
            for which in ("median", "max")
        ]
        lines.append(f"| `{probe.removeprefix('GET ')}` | " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
