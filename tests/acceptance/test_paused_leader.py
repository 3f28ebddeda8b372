"""A leader frozen past its lease (SIGSTOP), then thawed (SIGCONT): another replica has taken its
triggers meanwhile, and whatever the thawed process still does with what it had in hand is
refused by the lease's fence. No checkpoint ever goes back, every change arrives, and none
arrives under two webhook-ids."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from sftriggerd_emulator.context import EmulatorSettings
from tests.acceptance.replicas_rig import (
    POLLED,
    STREAMED,
    Replica,
    flaky_receiver,
    leaders,
    record_values,
    wait_for_leaders,
    wait_until_delivered,
    wait_until_reading,
)
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

TAKEOVER_S = 6  # the least ha.takeover the configuration accepts


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    return EmulatorSettings(state_dir=tmp_path / "org", cometd_timeout_ms=2000)


def position_rank(trigger: str, position: dict[str, Any]) -> tuple[Any, ...]:
    """What must never go back: the replay id of a stream, the watermark of a poller."""
    if trigger == STREAMED:
        replay = position.get("replay_id")
        return (replay if isinstance(replay, int) else -1,)
    return (position.get("watermark") or "", position.get("id") or "")


async def watch_checkpoints(url: str, stopping: asyncio.Event, regressions: list[str]) -> int:
    """Samples the checkpoints every 50 ms; records any that moved back. Returns samples."""
    last: dict[str, tuple[Any, ...]] = {}
    samples = 0
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while not stopping.is_set():
            cursor = await conn.execute("SELECT trigger, position FROM checkpoints")
            rows = await cursor.fetchall()
            for trigger, position in rows:
                rank = position_rank(trigger, position)
                if trigger in last and rank < last[trigger]:
                    regressions.append(f"{trigger}: {last[trigger]} -> {rank}")
                last[trigger] = max(rank, last.get(trigger, rank))
            samples += 1
            await asyncio.sleep(0.05)
    return samples


async def test_a_thawed_leader_is_fenced_out_and_nothing_goes_back(
    tmp_path: Path,
    postgres_url: str,
    emulator: RunningEmulator,
    org: OrgClient,
    http: aiohttp.ClientSession,
) -> None:
    made: set[str] = set()
    regressions: list[str] = []
    async with flaky_receiver(failing=0.0) as receiver:
        replicas = [
            Replica(slot, tmp_path, postgres_url, emulator.url, receiver.port, f"{TAKEOVER_S}s")
            for slot in ("r1", "r2")
        ]
        for replica in replicas:
            await replica.start()
        stopping = asyncio.Event()
        watcher = asyncio.create_task(watch_checkpoints(postgres_url, stopping, regressions))
        try:
            led = await wait_for_leaders(http, replicas, {STREAMED, POLLED}, timeout_s=60)
            await wait_until_reading(postgres_url, STREAMED, timeout_s=60)
            frozen = next(r for r in replicas if r.name == led[STREAMED])
            other = next(r for r in replicas if r is not frozen)

            async def change(n: int) -> None:
                await org.create("Account", {"Name": f"acct-{n}"})
                await org.create("Contact", {"LastName": f"ct-{n}"})
                made.update({f"acct-{n}", f"ct-{n}"})

            for n in range(5):
                await change(n)
            frozen.signal(signal.SIGSTOP)
            frozen_at = time.monotonic()
            # Changes while it is frozen: its held long-poll may take some of them in hand.
            for n in range(5, 15):
                await change(n)
                await asyncio.sleep(0.3)
            async with asyncio.timeout(TAKEOVER_S * 10):
                while (await leaders(http, [other])).get(STREAMED) != other.name:
                    await asyncio.sleep(0.1)
            taken_after = time.monotonic() - frozen_at
            for n in range(15, 20):
                await change(n)
            frozen.signal(signal.SIGCONT)
            for n in range(20, 30):
                await change(n)
                await asyncio.sleep(0.2)
            await wait_until_delivered(receiver, made, timeout_s=90)
            await asyncio.sleep(2)  # anything the thawed process still had in hand has landed
        finally:
            stopping.set()
            samples = await watcher
            for replica in replicas:
                if replica.running:
                    replica.signal(signal.SIGCONT)
                    await replica.kill()

    assert regressions == [], regressions
    assert samples > 20
    twice = {value: ids for value, ids in record_values(receiver.accepted).items() if len(ids) > 1}
    assert twice == {}, twice
    frozen_log = frozen.log.read_text(errors="replace")
    assert "lease_lost" in frozen_log or "led_source_fenced_out" in frozen_log, frozen_log[-3000:]
    print(f"\npaused leader: the other replica led {STREAMED} {taken_after:.1f} s after SIGSTOP")
