"""Review of issue 15 (second round), end to end: real `sftriggerd run` processes on one
PostgreSQL database and the emulator. Replica "a" (a fixed `ha.replica_name`, as a StatefulSet
pod or a systemd unit has) leads both triggers alone and is SIGKILLed; replica "b" starts, then
"a" is started again under its name. Its first round counts two replicas (share 1) and takes
one of its predecessor's leases; its second round takes the other for a running twin's: that
trigger is led by nobody until the dead process's lease runs out (`ha.takeover` from its last
renewal), "a" logs `replica_name_shared` (an error) about a process that does not exist, and
`/readyz` answers 503 meanwhile, and a change to that trigger waits that long. No trigger
should wait: the lease is its own predecessor's."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.acceptance.replicas_rig import (
    POLLED,
    STREAMED,
    Replica,
    flaky_receiver,
    record_values,
    wait_for_leaders,
)
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

# A long lease with frequent rounds: the dead process's leases outlive the test's checks by far
# (55 s from its last renewal), while the restarted process runs a round every 5 s.
HA = "60s, renew_every: 5s"
WAIT_S = 20.0


@dataclass
class NamedReplica(Replica):
    """A replica whose every process runs under the same `ha.replica_name`: its slot."""

    @property
    def name(self) -> str:
        return self.slot


async def ready(http: aiohttp.ClientSession, replica: Replica) -> bool:
    url = f"http://127.0.0.1:{replica.admin_port}/readyz"
    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
            return response.status == 200
    return False


async def listed(http: aiohttp.ClientSession, replica: Replica, name: str) -> bool:
    """Whether `replica`'s API lists the replica `name` (its heartbeat is in the store)."""
    url = f"http://127.0.0.1:{replica.admin_port}/api/replicas"
    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
            if response.status == 200:
                return any(view["name"] == name for view in await response.json())
    return False


async def test_review15b_a_replica_restarted_under_its_name_leads_again_at_once(
    tmp_path: Path,
    postgres_url: str,
    emulator: RunningEmulator,
    org: OrgClient,
    http: aiohttp.ClientSession,
) -> None:
    async with flaky_receiver(failing=0.0) as receiver:
        a, b = (
            NamedReplica(slot, tmp_path, postgres_url, emulator.url, receiver.port, HA)
            for slot in ("a", "b")
        )
        try:
            await a.start()
            led = await wait_for_leaders(http, [a], {STREAMED, POLLED}, timeout_s=60)
            assert set(led.values()) == {"a"}
            await a.kill()  # no hand-over: its leases stay live for 55 s
            await b.start()
            async with asyncio.timeout(30):
                while not await listed(http, b, "b"):
                    await asyncio.sleep(0.2)
            a.log.rename(tmp_path / "a.first.log")
            await a.start()
            await asyncio.sleep(12)  # its first round, then two more
            # A change to the trigger its first round left (the second by name: polled).
            await org.create("Contact", {"LastName": "after-restart"})
            deadline = time.monotonic() + WAIT_S
            while time.monotonic() < deadline:
                if "after-restart" in record_values(receiver.accepted):
                    break
                await asyncio.sleep(0.5)
            delivered = "after-restart" in record_values(receiver.accepted)
            was_ready = await ready(http, a)
            log = a.log.read_text(errors="replace")
            assert "replica_name_shared" not in log, a.log_tail()
            assert was_ready, f"a not ready after its restart\n{a.log_tail()}"
            assert delivered, f"the change not delivered within {WAIT_S}s\n{a.log_tail()}"
        finally:
            for replica in (a, b):
                if replica.running:
                    await replica.kill()
