"""A PostgreSQL pool far smaller than the work wanting it: two connections for eight endpoints'
workers, six triggers ingesting, the leadership and the status readers, all at once. Nothing
holds one connection while waiting for another, so everything waits its turn and completes.
And a pool that cannot give a connection in time fails the operation with a StoreError that
says so, /readyz's ping reads false meanwhile, and every part works again once connections
come free."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from sftriggerd.delivery import Dispatcher
from sftriggerd.errors import StoreError
from sftriggerd.metrics import Metrics
from sftriggerd.routing import order_key
from sftriggerd.store.postgres import PostgresStore
from sftriggerd.store.records import Checkpoint, NewEvent
from tests.delivery.rig import endpoint, running
from tests.support.receiver import Receiver
from tests.support.waiting import eventually

ENDPOINTS = [f"hook{n}" for n in range(8)]
TRIGGERS = [f"t{n}" for n in range(6)]
EVENTS_PER_TRIGGER = 40
LEASE = timedelta(seconds=30)


@pytest.fixture
async def small_pool(postgres_url: str) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(postgres_url, max_connections=2)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def change(trigger: str, n: int) -> NewEvent:
    record = f"{trigger}-r{n % 5}"
    return NewEvent(
        event_id=f"{trigger}-e{n}",
        record_id=record,
        occurred_at=datetime.now(UTC),
        body=f'{{"id":"{trigger}-e{n}"}}'.encode(),
        endpoints=tuple(ENDPOINTS),
        ordered_endpoints=frozenset(ENDPOINTS[::2]),  # half in per-record order
        order_key=order_key(trigger, record),
    )


def delivered(metrics: Metrics) -> float:
    return sum(
        metrics.registry.get_sample_value(
            "sftriggerd_deliveries_total", {"endpoint": name, "outcome": "delivered"}
        )
        or 0.0
        for name in ENDPOINTS
    )


async def test_two_connections_serve_eight_endpoints_six_triggers_and_the_leadership(
    small_pool: PostgresStore, receiver: Receiver
) -> None:
    store = small_pool
    hooks = [endpoint(receiver.url, name=name, max_in_flight=4) for name in ENDPOINTS]
    metrics = Metrics()
    dispatcher = Dispatcher(store, hooks, metrics, jitter=lambda: 0.5, wake_ups=store)
    stopping = asyncio.Event()

    async def ingest_all(trigger: str) -> None:
        await store.acquire_lease(trigger, "replica-a", LEASE)
        for n in range(0, EVENTS_PER_TRIGGER, 4):
            batch = [change(trigger, k) for k in range(n, n + 4)]
            await store.ingest(trigger, batch, Checkpoint(trigger=trigger, position={"n": n}))

    async def lead_and_look() -> int:
        """The leadership's and the status page's calls, meanwhile, as often as they get in."""
        rounds = 0
        while not stopping.is_set():
            await store.heartbeat("replica-a", timedelta(minutes=1))
            await store.renew_leases(
                "replica-a", {lease.trigger: lease.epoch for lease in await store.leases()}, LEASE
            )
            await store.outbox_counts()
            await store.list_deliveries(limit=20)
            rounds += 1
        return rounds

    async with running(dispatcher):
        looking = asyncio.create_task(lead_and_look())
        await asyncio.gather(*(ingest_all(trigger) for trigger in TRIGGERS))
        total = len(TRIGGERS) * EVENTS_PER_TRIGGER * len(ENDPOINTS)
        await eventually(lambda: delivered(metrics) == total, timeout_s=120)
        stopping.set()
        assert await asyncio.wait_for(looking, 30) > 0
    assert await store.outbox_counts() == {}  # nothing pending, nothing dead
    assert {c.trigger for c in await store.checkpoints()} == set(TRIGGERS)


async def test_no_free_connection_in_time_is_a_clear_store_error_and_passes(
    postgres_url: str,
) -> None:
    store = PostgresStore(postgres_url, max_connections=2, pool_timeout=0.5)
    await store.open()
    try:
        async with await psycopg.AsyncConnection.connect(postgres_url) as locker:
            # Both connections of the pool wait on a lock held elsewhere.
            await locker.execute("LOCK TABLE checkpoints IN ACCESS EXCLUSIVE MODE")
            waiting = [asyncio.create_task(store.checkpoints()) for _ in range(2)]
            await asyncio.sleep(0.3)
            with pytest.raises(StoreError) as raised:
                await store.outbox_counts()
            message = str(raised.value)
            assert "no connection of the pool free within 0.5s" in message
            assert "store.pool_size 2" in message
            assert not await store.ping()
            assert not any(task.done() for task in waiting)
            await locker.rollback()  # the lock goes: both waiting operations complete
        assert [await task for task in waiting] == [[], []]
        assert await store.ping()
        assert await store.outbox_counts() == {}
        # And again right after: the pool is whole, not short of the connections that waited.
        assert await asyncio.gather(*(store.checkpoints() for _ in range(6))) == [[]] * 6
    finally:
        await store.close()
