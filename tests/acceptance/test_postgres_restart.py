"""The PostgreSQL server restarting under a running daemon, as the daemon sees it: every
connection to its database ended at once (`pg_terminate_backend` from an admin connection; the
shared server itself cannot be restarted by tests). Changes made before, during and after
arrive; the pool replaces its broken connections, the wake-up listener comes back, the lease
and its source go on, /readyz answers 200 again. Then the aftermath: the server down past the
lease (connections refused meanwhile), a termination right after that recovery, and a quiet
spell followed by one more change."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import psycopg
import pytest

from sftriggerd_emulator.context import EmulatorSettings
from tests.acceptance.replicas_rig import (
    POLLED,
    STREAMED,
    Replica,
    flaky_receiver,
    wait_for_leaders,
    wait_until_delivered,
)
from tests.support.emulator import RunningEmulator
from tests.support.postgres import database_url
from tests.support.sfclient import OrgClient

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    return EmulatorSettings(state_dir=tmp_path / "org", cometd_timeout_ms=2000)


def database_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


async def allow_connections(dbname: str, allowed: bool) -> None:
    """While refused, a new connection fails as against a server still starting up."""
    async with await psycopg.AsyncConnection.connect(
        database_url("postgres"), autocommit=True
    ) as admin:
        await admin.execute(
            f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS {"true" if allowed else "false"}'.encode()
        )


async def terminate_every_backend(dbname: str) -> int:
    """What a server restart does to the clients: every connection to `dbname` ends."""
    async with await psycopg.AsyncConnection.connect(
        database_url("postgres"), autocommit=True
    ) as admin:
        cursor = await admin.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        )
        row = await cursor.fetchone()
        assert row is not None
        return int(row[0])


async def listening(dbname: str) -> bool:
    """Whether a connection to `dbname` sits in LISTEN (the wake-up listener's last query)."""
    async with await psycopg.AsyncConnection.connect(
        database_url("postgres"), autocommit=True
    ) as admin:
        cursor = await admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND query LIKE 'LISTEN %%'",
            (dbname,),
        )
        row = await cursor.fetchone()
        return row is not None and row[0] > 0


async def ready(http: aiohttp.ClientSession, port: int) -> bool:
    try:
        url = f"http://127.0.0.1:{port}/readyz"
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def seconds_until(check: Callable[[], Awaitable[bool]], timeout_s: float) -> float:
    """Seconds until `check()` is true, asked every 50 ms."""
    started = time.monotonic()
    async with asyncio.timeout(timeout_s):
        while not await check():
            await asyncio.sleep(0.05)
    return time.monotonic() - started


# The default pool, and the smallest: its two connections both broken at once.
@pytest.mark.parametrize("pool_size", [10, 2])
async def test_every_connection_ended_twice_then_a_quiet_spell(
    pool_size: int,
    tmp_path: Path,
    postgres_url: str,
    emulator: RunningEmulator,
    org: OrgClient,
    http: aiohttp.ClientSession,
) -> None:
    dbname = database_of(postgres_url)
    made: set[str] = set()
    figures: list[str] = []

    async def change(n: int) -> None:
        await org.create("Account", {"Name": f"acct-{n}"})
        await org.create("Contact", {"LastName": f"ct-{n}"})
        made.update({f"acct-{n}", f"ct-{n}"})

    async with flaky_receiver(failing=0.0) as receiver:
        replica = Replica(
            "r1", tmp_path, postgres_url, emulator.url, receiver.port, "6s", pool_size
        )
        await replica.start()
        try:
            await wait_for_leaders(http, [replica], {STREAMED, POLLED}, timeout_s=60)
            await seconds_until(lambda: listening(dbname), timeout_s=30)
            # Ready: the streamed trigger (`start_from: latest`) has subscribed. A change made
            # before that is older than the trigger's start, and not one it owes.
            await seconds_until(lambda: ready(http, replica.admin_port), timeout_s=30)
            for n in range(3):
                await change(n)
            await wait_until_delivered(receiver, set(made), timeout_s=60)

            next_change = 3
            # The server back at once; down past the lease (4 s: takeover 6 s less a renewal
            # period of 2 s); then again right after.
            for round_, down_s in (("instant", 0.0), ("down 5 s", 5.0), ("again", 0.0)):
                if down_s:
                    await allow_connections(dbname, False)
                ended = await terminate_every_backend(dbname)
                assert ended >= 2, f"{round_}: only {ended} connections to end"
                cut = time.monotonic()
                if down_s:
                    await asyncio.sleep(down_s / 2)
                    assert not await ready(http, replica.admin_port)
                    await asyncio.sleep(down_s / 2)
                    await allow_connections(dbname, True)
                # Changes while the daemon reconnects: Salesforce keeps them meanwhile.
                for n in range(next_change, next_change + 3):
                    await change(n)
                next_change += 3
                ready_s = (
                    time.monotonic()
                    - cut
                    + await seconds_until(lambda: ready(http, replica.admin_port), timeout_s=60)
                )
                listen_s = (
                    time.monotonic()
                    - cut
                    + await seconds_until(lambda: listening(dbname), timeout_s=30)
                )
                await wait_until_delivered(receiver, set(made), timeout_s=90)
                delivered_s = time.monotonic() - cut
                await wait_for_leaders(http, [replica], {STREAMED, POLLED}, timeout_s=30)
                figures.append(
                    f"{round_}: {ended} connections ended; /readyz 200 after {ready_s:.1f} s,"
                    f" listening after {listen_s:.1f} s, all changes delivered {delivered_s:.1f} s"
                )

            await asyncio.sleep(10)  # a quiet spell: nothing for the pool or listener to do
            quiet = time.monotonic()
            await change(next_change)
            await wait_until_delivered(receiver, set(made), timeout_s=60)
            figures.append(f"after 10 s quiet: a change delivered {time.monotonic() - quiet:.1f} s")
            assert replica.running, replica.log_tail()
        finally:
            if replica.running:
                replica.signal(signal.SIGTERM)
                assert replica.process is not None
                await replica.process.stop()

    assert receiver.bad_signatures == 0
    print(f"\npostgres restart, pool_size {pool_size}: " + "; ".join(figures))
