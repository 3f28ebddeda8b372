"""Events per second from the emulator into the store, over CometD and over the Pub/Sub API.

    .venv/bin/python benchmarks/transports.py [--events 20000] [--rounds 3] [--json]

Starts the emulator in this process (REST, CometD and the Pub/Sub API on free ports), creates
`--events` Accounts through sObject Collections (200 a request, each with its own Name, so
each is a change event of its own), then, per transport, runs the real daemon
(`sftriggerd run`) with one streaming trigger on Account from `earliest` into a fresh SQLite
store (no endpoints: only the stream and the store are measured) and polls the store's event
count until all of them are in. Per transport it prints the time from the daemon's start to
its first stored event (start-up, login, subscribe) and to the last, and the streaming rate
in between: events stored after the first poll that saw any, over the time they took; with
`--rounds R` each transport runs R times (alternately, each on a fresh store) and the round
of the median rate is shown. No assertions: figures for people.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import sqlite3
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from sftriggerd_emulator.context import EmulatorContext, EmulatorSettings
from sftriggerd_emulator.server import build_app

TRANSPORTS = ("cometd", "pubsub")
COLLECTION_SIZE = 200  # sObject Collections' most records a request
POLL_S = 0.05
# The emulator's counter of events each transport sent (GET /_emulator/stats).
SENT_STAT = {"cometd": "events_delivered", "pubsub": "pubsub_events_delivered"}


@dataclass(frozen=True)
class Leg:
    transport: str
    events: int  # stored in the end
    messages: int  # change events the emulator sent (one may name several records)
    first_stored_s: float  # from the daemon's start
    all_stored_s: float  # from the daemon's start
    # Events stored after the first poll that saw any, over their time; None when that poll
    # saw them all (too few events to tell).
    per_second: float | None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def daemon_command() -> list[str]:
    script = Path(sys.executable).with_name("sftriggerd")
    if script.exists():
        return [str(script)]
    found = shutil.which("sftriggerd")
    return [found] if found else [sys.executable, "-m", "sftriggerd"]


def config_text(transport: str, login_url: str, pubsub: str, store: Path) -> str:
    return f"""
salesforce:
  login_url: {login_url}
  auth: {{flow: password, client_id: emulator-client, client_secret: emulator-secret,
          username: admin@emulator.local, password: emulator}}
  pubsub_url: http://{pubsub}
store: {{url: "sqlite:///{store}"}}
triggers:
  - {{name: accounts, object: Account, mode: streaming, fields: [Name],
      start_from: earliest, transport: {transport}}}
server: {{listen: "127.0.0.1:{free_port()}", shutdown_grace: 5s}}
logging: {{level: warning, format: json}}
"""


async def create_accounts(url: str, count: int) -> None:
    async with aiohttp.ClientSession() as http:
        form = {
            "grant_type": "password",
            "client_id": "emulator-client",
            "client_secret": "emulator-secret",
            "username": "admin@emulator.local",
            "password": "emulator",
        }
        async with http.post(f"{url}/services/oauth2/token", data=form) as response:
            login = await response.json()
        headers = {"Authorization": f"Bearer {login['access_token']}"}
        collection = f"{login['instance_url']}/services/data/v60.0/composite/sobjects"
        for start in range(0, count, COLLECTION_SIZE):
            records = [
                {"attributes": {"type": "Account"}, "Name": f"Benchmark {n}"}
                for n in range(start, min(count, start + COLLECTION_SIZE))
            ]
            body = {"allOrNone": True, "records": records}
            async with http.post(collection, json=body, headers=headers) as response:
                answer = await response.json()
                if response.status != 200 or not all(r["success"] for r in answer):
                    raise RuntimeError(f"creating accounts failed: {answer}")


def stored(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(store, timeout=1) as db:
            (count,) = db.execute("SELECT count(*) FROM events").fetchone()
    except sqlite3.OperationalError:  # not migrated yet, or busy
        return 0
    return int(count)


async def run_leg(
    transport: str, events: int, ctx: EmulatorContext, scratch: Path, timeout_s: float
) -> Leg:
    assert ctx.pubsub_address is not None
    login_url, pubsub = ctx.base_url, ctx.pubsub_address
    sent_key = SENT_STAT[transport]
    sent_before = ctx.stats[sent_key]
    store = scratch / f"{transport}.db"
    config = scratch / f"{transport}.yaml"
    config.write_text(config_text(transport, login_url, pubsub, store))
    log = (scratch / f"{transport}.log").open("wb")
    started = time.monotonic()
    daemon = await asyncio.create_subprocess_exec(
        *daemon_command(), "run", "--config", str(config), stdout=log, stderr=log
    )
    first_s: float | None = None
    first_count = count = 0
    try:
        while count < events:
            if daemon.returncode is not None or time.monotonic() - started > timeout_s:
                tail = (scratch / f"{transport}.log").read_text()[-2000:]
                raise RuntimeError(f"{transport}: {count} of {events} stored\n{tail}")
            await asyncio.sleep(POLL_S)
            count = await asyncio.to_thread(stored, store)
            if count and first_s is None:
                first_s, first_count = time.monotonic() - started, count
        all_s = time.monotonic() - started
    finally:
        if daemon.returncode is None:
            daemon.terminate()
            await daemon.wait()
        log.close()
    assert first_s is not None
    streamed = count - first_count
    per_second = round(streamed / (all_s - first_s), 1) if streamed else None
    sent = ctx.stats[sent_key] - sent_before
    return Leg(transport, count, sent, round(first_s, 3), round(all_s, 3), per_second)


def median_leg(legs: list[Leg]) -> Leg:
    ranked = sorted(legs, key=lambda leg: leg.per_second or 0.0)
    return ranked[len(ranked) // 2]


async def measure(events: int, rounds: int, timeout_s: float) -> list[Leg]:
    scratch = Path(tempfile.mkdtemp(prefix="sftriggerd-transports-"))
    settings = EmulatorSettings(state_dir=None, port=0, pubsub_port=0)
    app, ctx = build_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
        settings.port = runner.addresses[0][1]
        await create_accounts(ctx.base_url, events)
        legs: dict[str, list[Leg]] = {name: [] for name in TRANSPORTS}
        for round_number in range(rounds):
            order = TRANSPORTS if round_number % 2 == 0 else TRANSPORTS[::-1]
            for name in order:
                leg_dir = scratch / f"{name}-{round_number}"
                leg_dir.mkdir()
                legs[name].append(await run_leg(name, events, ctx, leg_dir, timeout_s))
        return [median_leg(legs[name]) for name in TRANSPORTS]
    finally:
        await runner.cleanup()
        shutil.rmtree(scratch, ignore_errors=True)


def table(legs: list[Leg]) -> str:
    lines = [
        "| transport | events stored | messages sent | first stored (s) | all stored (s) "
        "| events/s streaming |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for leg in legs:
        rate = "-" if leg.per_second is None else f"{leg.per_second:,.0f}"
        lines.append(
            f"| {leg.transport} | {leg.events} | {leg.messages} | {leg.first_stored_s:.2f} "
            f"| {leg.all_stored_s:.2f} | {rate} |"
        )
    return "\n".join(lines)


def ratio(legs: list[Leg]) -> float | None:
    rates = {leg.transport: leg.per_second for leg in legs}
    pubsub, cometd = rates["pubsub"], rates["cometd"]
    return None if pubsub is None or cometd is None else round(pubsub / cometd, 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000, help="changes to stream (20000)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per transport (3)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per transport")
    parser.add_argument("--json", action="store_true", help="one JSON object, no table")
    args = parser.parse_args()
    legs = asyncio.run(measure(args.events, args.rounds, args.timeout))
    report: dict[str, Any] = {
        "events": args.events,
        "rounds": args.rounds,
        "legs": [asdict(leg) for leg in legs],
        "pubsub_over_cometd": ratio(legs),
    }
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(f"{args.events} Account changes, emulator -> sftriggerd run -> SQLite")
    print(f"median of {args.rounds} rounds per transport\n")
    print(table(legs))
    print(f"\npubsub / cometd (events/s streaming): {report['pubsub_over_cometd'] or '-'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
