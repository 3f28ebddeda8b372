"""Three `sftriggerd run` replicas on one PostgreSQL database while replicas die: one trigger
streams and one polls from the emulator, the receiver fails 30 % of requests, and every few
seconds a replica (the leader more often than not) is SIGKILLed and started again. Every change
arrives; a change arrives twice only under the same webhook-id; the emulator never had two live
subscribers on the channel at once. Takeover times are printed, not asserted."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import aiohttp
import pytest

from sftriggerd_emulator.context import EmulatorSettings
from tests.acceptance.replicas_rig import (
    CHANNEL,
    POLLED,
    STREAMED,
    Replica,
    flaky_receiver,
    leaders,
    overlapping_subscribers,
    record_values,
    wait_for_leaders,
    wait_until_delivered,
    wait_until_reading,
)
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient, control

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

CHAOS_S = 60
TAKEOVER = "6s"  # the least ha.takeover the configuration accepts


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    return EmulatorSettings(state_dir=tmp_path / "org", cometd_timeout_ms=2000)


async def make_changes(org: OrgClient, stopping: asyncio.Event, made: set[str]) -> None:
    """An Account and a Contact change every ~0.3 s, each with a value never used before."""
    accounts: list[str] = []
    n = 0
    while not stopping.is_set():
        n += 1
        name = f"acct-{n}"
        if accounts and n % 3 == 0:
            path = f"sobjects/Account/{accounts[-1]}"
            answer = await org.call("PATCH", path, json={"Name": name})
            assert answer.status == 204, answer.body
        else:
            accounts.append(await org.create("Account", {"Name": name}))
        made.add(name)
        await org.create("Contact", {"LastName": f"ct-{n}"})
        made.add(f"ct-{n}")
        await asyncio.sleep(0.3)


async def test_replicas_dying_at_random_lose_and_double_nothing(
    tmp_path: Path,
    postgres_url: str,
    emulator: RunningEmulator,
    org: OrgClient,
    http: aiohttp.ClientSession,
) -> None:
    rng = random.Random(20261203)
    takeovers: list[float] = []
    made: set[str] = set()
    async with flaky_receiver(failing=0.3) as receiver:
        replicas = [
            Replica(slot, tmp_path, postgres_url, emulator.url, receiver.port, TAKEOVER)
            for slot in ("r1", "r2", "r3")
        ]
        for replica in replicas:
            await replica.start()
        try:
            await wait_for_leaders(http, replicas, {STREAMED, POLLED}, timeout_s=60)
            await wait_until_reading(postgres_url, STREAMED, timeout_s=60)
            stopping = asyncio.Event()
            changes = asyncio.create_task(make_changes(org, stopping, made))
            deadline = time.monotonic() + CHAOS_S
            while time.monotonic() < deadline:
                await asyncio.sleep(rng.uniform(2.0, 5.0))
                led = await leaders(http, replicas)
                leading = [r for r in replicas if r.name in led.values()]
                victim = rng.choice(leading if leading and rng.random() < 0.7 else replicas)
                lost = {trigger for trigger, holder in led.items() if holder == victim.name}
                dead_name = victim.name
                await victim.kill()
                killed_at = time.monotonic()
                await asyncio.sleep(rng.uniform(0.2, 1.5))
                await victim.start()
                if lost:
                    takeovers.append(
                        await takeover_time(http, replicas, lost, dead_name, killed_at)
                    )
            stopping.set()
            await changes
            await wait_until_delivered(receiver, made, timeout_s=120)
        finally:
            for replica in replicas:
                if replica.running:
                    await replica.kill()

    twice = {value: ids for value, ids in record_values(receiver.accepted).items() if len(ids) > 1}
    assert twice == {}, f"one change under several webhook-ids: {twice}"
    assert receiver.bad_signatures == 0

    subscribers = await control(http, emulator.url, "subscribers")
    spans = subscribers.body["channels"].get(CHANNEL, [])
    assert len(spans) >= 2, spans  # the channel did change hands
    assert overlapping_subscribers(spans) == []

    shown = ", ".join(f"{seconds:.1f}" for seconds in takeovers) or "none measured"
    print(
        f"\nreplica chaos: {len(made)} changes, {receiver.requests} requests"
        f" ({len(receiver.accepted)} accepted), {sum(r.started for r in replicas) - 3} restarts;"
        f" seconds from a leader's kill to its triggers led again: {shown}"
    )


async def takeover_time(
    http: aiohttp.ClientSession,
    replicas: list[Replica],
    triggers: set[str],
    dead_name: str,
    killed_at: float,
) -> float:
    """Seconds from the kill until every trigger the dead process led has a live leader."""
    async with asyncio.timeout(60):
        while True:
            led = await leaders(http, replicas)
            if all(led.get(trigger, dead_name) != dead_name for trigger in triggers):
                return time.monotonic() - killed_at
            await asyncio.sleep(0.1)
