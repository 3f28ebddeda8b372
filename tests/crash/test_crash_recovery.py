"""SIGKILL a process that ingests and delivers, again and again: nothing committed is lost.

The child (`tests/crash/child.py`) reads events 0..N-1 as a source would, committing each
batch with its checkpoint, and runs the real dispatcher against a real receiver served by
this test. The test kills it at random moments (seeded), restarts it on the same SQLite
file each time, and finally lets it finish. Every event must then have reached the receiver
at least once; duplicates are allowed (the webhook-id is the deduplication key) and counted.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from sftriggerd.store.sqlite import SqliteStore
from tests.crash.child import ENDPOINT, RECORDS, SECRET, TRIGGER, event_key

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 3000
BATCH = 25
PACE_S = 0.05
KILLS = 30
MAX_LIFE_S = 0.4  # a child is killed this long at most after it reports ready
SEED = int(os.environ.get("SFTRIGGERD_CRASH_SEED", "20261128"))


@dataclass
class Receiver:
    """Verifies each webhook's Standard Webhooks signature, records its id, answers 204."""

    url: str = ""
    ids: list[str] = field(default_factory=list)
    rejected: int = 0
    verifier: Webhook = field(default_factory=lambda: Webhook(SECRET))

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if "webhook-id" not in request.headers or "webhook-signature" not in request.headers:
            self.rejected += 1
            return web.Response(status=400)
        try:
            self.verifier.verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.rejected += 1
            return web.Response(status=401)
        self.ids.append(request.headers["webhook-id"])
        return web.Response(status=204)


@asynccontextmanager
async def serving() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield receiver
    finally:
        await runner.cleanup()


@dataclass
class Life:
    """One run of the child, and what it reported on stdout."""

    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            line = raw.decode().strip()
            self.lines.append(line)
            if line.startswith("ready "):
                self.ready.set()

    def reported(self, kind: str) -> list[list[int]]:
        return [
            [int(part) for part in line.split()[1:]]
            for line in self.lines
            if line.startswith(kind + " ")
        ]

    async def ended(self, timeout_s: float) -> int:
        code = await asyncio.wait_for(self.process.wait(), timeout_s)
        if self.reader is not None:
            await self.reader
        return code


async def start(store: Path, url: str, log: Path, *extra: str) -> Life:
    with log.open("ab") as errors:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.crash.child",
            *("--store", str(store), "--url", url, "--events", str(EVENTS)),
            *("--batch", str(BATCH), "--pace-s", str(PACE_S), *extra),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=errors,
        )
    life = Life(process)
    life.reader = asyncio.create_task(life.read())
    return life


def first_arrivals(ids: list[str]) -> dict[str, int]:
    first: dict[str, int] = {}
    for position, webhook_id in enumerate(ids):
        first.setdefault(webhook_id, position)
    return first


def check_order_per_record(ids: list[str], number_of: Callable[[str], int]) -> None:
    """A record's newer change never reached the receiver before its older one did."""
    arrived = sorted(first_arrivals(ids).items(), key=lambda item: item[1])
    last_seen: dict[int, int] = {}
    for webhook_id, _ in arrived:
        number = number_of(webhook_id)
        record = number % RECORDS
        assert number > last_seen.get(record, -1), f"event {number} overtook an older change"
        last_seen[record] = number


async def kill_repeatedly(store: Path, url: str, log: Path, lives: list[Life]) -> None:
    rng = random.Random(SEED)
    for _ in range(KILLS):
        life = await start(store, url, log)
        lives.append(life)
        await asyncio.wait_for(life.ready.wait(), 20)
        await asyncio.sleep(rng.uniform(0.0, MAX_LIFE_S))
        assert life.process.returncode is None, f"the child died on its own: see {log}"
        life.process.send_signal(signal.SIGKILL)
        assert await life.ended(10) == -signal.SIGKILL


async def run_all(store: Path, url: str, log: Path) -> list[Life]:
    """Every run of the child: killed KILLS times, then left to finish."""
    lives: list[Life] = []
    try:
        await kill_repeatedly(store, url, log, lives)
        last = await start(store, url, log, "--exit-when-done")
        lives.append(last)
        assert await last.ended(60) == 0, f"the last run failed: see {log}"
        assert last.lines[-1] == "done"
    finally:
        for life in lives:  # none is left behind when the test fails half-way
            if life.process.returncode is None:
                life.process.kill()
                await life.process.wait()
    return lives


def report(lives: list[Life], ids: list[str], number_of: Callable[[str], int]) -> int:
    progress = [max((r[0] for r in life.reported("ingested")), default=0) for life in lives]
    reread = sum(r[2] for life in lives for r in life.reported("ingested"))
    repeats = {key: count for key, count in Counter(ids).items() if count > 1}
    duplicates = len(ids) - len(set(ids))
    print(f"\ncrash test: seed {SEED}, {KILLS} kills, {len(lives)} runs, {EVENTS} events")
    print(f"ingested up to, per run: {progress}")
    print(f"events re-read after a restart and skipped as duplicates: {reread}")
    print(f"webhooks received: {len(ids)}, distinct: {len(set(ids))}, duplicates: {duplicates}")
    shown = sorted((number_of(key), count) for key, count in repeats.items())
    print(f"duplicated events (number, times received): {shown}")
    return duplicates


@pytest.mark.slow
async def test_sigkill_at_random_moments_loses_no_delivery(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    started = time.monotonic()
    store_path, log = tmp_path / "state.db", tmp_path / "child.log"
    numbers = {event_key(number): number for number in range(EVENTS)}
    async with serving() as receiver:
        lives = await run_all(store_path, receiver.url, log)

    ids = receiver.ids
    duplicates = report(lives, ids, numbers.__getitem__)
    runtime_s = time.monotonic() - started
    print(f"runtime {runtime_s:.1f} s")
    record_property("crash_kills", KILLS)
    record_property("crash_duplicates", duplicates)
    record_property("crash_runtime_s", round(runtime_s, 1))

    assert receiver.rejected == 0
    # The kills landed while there was work: the source had not read everything yet.
    assert max(row[0] for row in lives[-2].reported("ingested")) < EVENTS
    assert set(ids) == set(numbers), f"lost: {sorted(numbers[k] for k in set(numbers) - set(ids))}"
    # Each run found every event its checkpoint covers committed (nothing skipped), and a
    # checkpoint no older than the previous run's.
    resumed = [life.reported("ready")[0] for life in lives]
    ahead = [(checkpoint, stored) for checkpoint, stored in resumed if stored != checkpoint]
    assert not ahead, f"checkpoint and committed events differ: {ahead}"
    positions = [checkpoint for checkpoint, _ in resumed]
    assert positions == sorted(positions) and positions[-1] <= EVENTS
    check_order_per_record(ids, numbers.__getitem__)

    store = SqliteStore(store_path)
    await store.open()
    try:
        assert await store.outbox_counts() == {}
        checkpoint = await store.checkpoint(TRIGGER)
        assert checkpoint is not None and checkpoint.position == {"next": EVENTS}
        rows = await store.list_deliveries(limit=2 * EVENTS)
    finally:
        await store.close()
    # One delivery per event: re-reads after restarts were absorbed by ingestion.
    assert len(rows) == EVENTS
    assert {row.endpoint for row in rows} == {ENDPOINT}
    assert {row.status for row in rows} == {"delivered"}
    assert {row.event_id for row in rows} <= set(ids)
