"""SIGKILL the streaming source inside its back-fills, again and again: no change is lost.

The child (`tests/crash/backfill_child.py`) runs the real streaming source against an
emulator served by this test, on one SQLite file. Between its runs the test makes changes,
and on every other run lets the child stream one change first (so it has a replay id) and
then expires the retained events, so restarts go through both resume paths: from the time a
fill reached (no replay id) and the back-fill after an expired replay id. Each run is killed
after a seeded number of fill pages, before its fill is complete; the last run finishes.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from sftriggerd.sources.position import ReplayPosition, decode
from sftriggerd.store.sqlite import SqliteStore
from sftriggerd_emulator.context import EmulatorSettings
from tests.crash.test_crash_recovery import ROOT, Life
from tests.support.emulator import start_emulator
from tests.support.sfclient import OrgClient, control

SEED = int(os.environ.get("SFTRIGGERD_BACKFILL_CRASH_SEED", "20261203"))
KILLS = 4


async def start(store: Path, emulator_url: str, log: Path) -> Life:
    with log.open("ab") as errors:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.crash.backfill_child",
            *("--store", str(store), "--emulator", emulator_url),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=errors,
        )
    life = Life(process)
    life.reader = asyncio.create_task(life.read())
    return life


async def reported(life: Life, line: str, count: int = 1, timeout_s: float = 30) -> None:
    async with asyncio.timeout(timeout_s):
        while life.lines.count(line) < count:
            assert life.process.returncode is None, "the child died on its own"
            await asyncio.sleep(0.01)


async def kill(life: Life) -> None:
    life.process.send_signal(signal.SIGKILL)
    assert await life.ended(10) == -signal.SIGKILL


async def kill_inside_fills(
    http: aiohttp.ClientSession, url: str, store: Path, log: Path, lives: list[Life]
) -> list[str]:
    """Every run but the last is killed; returns the ids of every change made."""
    rng = random.Random(SEED)
    org = await OrgClient.login(http, url)
    made: list[str] = []
    lives.append(first := await start(store, url, log))
    await reported(first, "connected")  # a new trigger: it saves the time it started
    await kill(first)
    # Slow every REST answer down a little, so a fill of a few pages takes a while.
    await control(http, url, "delay", {"surface": "rest", "seconds": 0.03, "count": -1})
    for round_number in range(KILLS):
        rows = [{"Name": f"R{round_number} {i}"} for i in range(5)]
        made += await org.create_many("Account", rows)
        if round_number % 2:
            await control(http, url, "retention", {"drop_before_replay_id": 10**12})
        lives.append(life := await start(store, url, log))
        await reported(life, "page", rng.randint(1, 3))
        await kill(life)
        assert "connected" not in life.lines, "the kill landed after the fill"
        if round_number % 2 == 0:  # a live change: the next resume has a replay id
            lives.append(live := await start(store, url, log))
            await reported(live, "connected")
            made.append(await org.create("Account", {"Name": f"Live {round_number}"}))
            await reported(live, "streamed")
            await kill(live)
    lives.append(last := await start(store, url, log))
    await reported(last, "connected", timeout_s=60)
    await kill(last)
    return made


@pytest.mark.slow
async def test_sigkill_inside_back_fills_loses_no_change(tmp_path: Path) -> None:
    store_path, log = tmp_path / "state.db", tmp_path / "child.log"
    settings = EmulatorSettings(state_dir=tmp_path / "org", cometd_timeout_ms=1000)
    emulator, runner = await start_emulator(settings)
    lives: list[Life] = []
    try:
        async with aiohttp.ClientSession() as http:
            made = await kill_inside_fills(http, emulator.url, store_path, log, lives)
    finally:
        for life in lives:
            if life.process.returncode is None:
                life.process.kill()
                await life.process.wait()
        await runner.cleanup()
    store = SqliteStore(store_path)
    await store.open()
    try:
        stored = await store.last_changes("accounts", made)
        saved = await store.checkpoint("accounts")
    finally:
        await store.close()
    pages = sum(life.lines.count("page") for life in lives)
    print(
        f"\nback-fill crash test: seed {SEED}, {KILLS} kills inside fills, {len(lives)} runs,"
        f" {len(made)} changes, {pages} fill pages stored"
    )
    assert sorted(set(made) - set(stored)) == [], "changes lost across the kills"
    assert {state.change for state in stored.values()} == {"created"}
    assert saved is not None
    assert isinstance(decode("accounts", saved.position, saved.event_time), ReplayPosition)
