"""Leases between real replicas: several engines, each with its pool, on one PostgreSQL
database (each test's own, dropped after it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import psycopg
import pytest

from sftriggerd.store.leadership import LeaseLostError
from sftriggerd.store.postgres import PostgresStore
from sftriggerd.store.postgres import leadership as pg_leadership
from tests.support.clock import ShiftedClock
from tests.support.waiting import eventually

from .test_store_contract import checkpoint

REPLICAS = ("a", "b", "c", "d")
HOUR = timedelta(hours=1)


@pytest.fixture
async def replicas(postgres_url: str, clock: ShiftedClock) -> AsyncIterator[list[PostgresStore]]:
    stores = [PostgresStore(postgres_url, clock_shift=lambda: clock.offset) for _ in REPLICAS]
    for store in stores:
        await store.open()
    try:
        yield stores
    finally:
        for store in stores:
            await store.close()


async def race(stores: list[PostgresStore], trigger: str) -> list[str]:
    """Every replica asks for the lease at once; the names of those that got it."""
    asking = zip(stores, REPLICAS, strict=True)
    got = await asyncio.gather(*(store.acquire_lease(trigger, n, HOUR) for store, n in asking))
    return [lease.holder for lease in got if lease is not None]


async def test_replicas_racing_for_a_lease_leave_one_holder_each_time(
    replicas: list[PostgresStore], clock: ShiftedClock
) -> None:
    for trigger in ("t1", "t2", "t3"):
        assert len(await race(replicas, trigger)) == 1  # never held: one insert wins
    clock.advance(HOUR + timedelta(seconds=1))  # every holder died
    for trigger in ("t1", "t2", "t3"):
        assert len(await race(replicas, trigger)) == 1  # ran out: one update wins
    leases = await replicas[0].leases()
    assert [(lease.epoch, lease.live) for lease in leases] == [(2, True)] * 3


async def test_a_takeover_waits_for_the_fenced_write_under_way(
    replicas: list[PostgresStore], postgres_url: str, clock: ShiftedClock
) -> None:
    a, b = replicas[0], replicas[1]
    lease = await a.acquire_lease("t", "a", timedelta(minutes=1))
    assert lease is not None
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as writer:
        async with writer.transaction():
            # The writer's transaction checked its fence and holds the lease row FOR SHARE.
            await pg_leadership.check_fence(writer, "t", lease.fence)
            clock.advance(timedelta(minutes=2))  # meanwhile the lease runs out
            taking = asyncio.create_task(b.acquire_lease("t", "b", HOUR))

            async def waiting_on_the_lock() -> bool:
                cursor = await writer.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
                row = await cursor.fetchone()
                return bool(row and row[0])

            await eventually(waiting_on_the_lock)
            assert not taking.done()
            await writer.execute(
                "INSERT INTO checkpoints (trigger, position, updated_at)"
                " VALUES ('t', '{\"n\": 1}', now())"
            )
        taken = await taking
    assert taken is not None and (taken.holder, taken.epoch) == ("b", 2)
    saved = await a.checkpoint("t")
    assert saved is not None and saved.position == {"n": 1}  # committed before the takeover


async def test_a_leader_writing_while_another_takes_over_never_writes_after_it(
    replicas: list[PostgresStore],
) -> None:
    a, b = replicas[0], replicas[1]
    lease = await a.acquire_lease("t", "a", timedelta(seconds=0.3))
    assert lease is not None
    written: list[int] = []

    async def leader() -> None:
        n = 0
        while True:
            n += 1
            try:
                await a.ingest("t", [], checkpoint(n), fence=lease.fence)
            except LeaseLostError:
                return
            written.append(n)

    async def follower() -> None:
        while await b.acquire_lease("t", "b", HOUR) is None:
            await asyncio.sleep(0.01)
        [taken] = [x for x in await b.leases() if x.trigger == "t"]
        await b.ingest("t", [], checkpoint(1_000_000), fence=taken.fence)

    await asyncio.wait_for(asyncio.gather(leader(), follower()), 30)
    assert written  # the leader wrote while it held the lease
    saved = await a.checkpoint("t")
    assert saved is not None and saved.position == {"replay_id": 1_000_000}


async def test_a_leader_frozen_inside_its_write_cannot_hold_a_takeover_off(
    replicas: list[PostgresStore], clock: ShiftedClock
) -> None:
    """A leader stopped (SIGSTOP, a VM pause) between the statements of its fenced write keeps
    the lease row locked; the server ends that idle transaction, so the takeover goes on
    without waiting for the frozen process to wake."""
    a, b = replicas[0], replicas[1]
    lease = await a.acquire_lease("t", "a", timedelta(minutes=1))
    assert lease is not None
    assert a._pool is not None
    frozen_write = await a._pool.getconn()  # configured as every connection of the store
    try:
        await frozen_write.execute("BEGIN")
        await pg_leadership.check_fence(frozen_write, "t", lease.fence)
        clock.advance(timedelta(minutes=2))  # the lease runs out while the writer is frozen
        async with asyncio.timeout(15):
            taken = await b.acquire_lease("t", "b", HOUR)
        assert taken is not None and (taken.holder, taken.epoch) == ("b", 2)
        # The frozen writer, thawed, finds its transaction gone: it can write nothing.
        with pytest.raises(psycopg.Error):
            await frozen_write.execute(
                "INSERT INTO checkpoints (trigger, position, updated_at)"
                " VALUES ('t', '{\"n\": 1}', now())"
            )
    finally:
        await a._pool.putconn(frozen_write)
    assert await b.checkpoint("t") is None
