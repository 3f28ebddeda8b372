"""The outbox gauges after the store stalls once: the refresh spacing is twenty times what the
last count took, and what it took includes waiting for the store (behind a write another
process's lock holds up, behind a table lock on PostgreSQL), so one stall of a few seconds
leaves sftriggerd_outbox_pending / _dead reading the old numbers for minutes, while outcomes
meanwhile ask for a refresh (`_counts_due`) that the first wait does not listen to.

The alert rules read these gauges (SftriggerdOutboxBacklogHigh, ...Growing): a drained
backlog keeps them firing, a new one is seen late. The deadline below is 50 count intervals,
long after any refresh the interval promises: it bounds a lie, not a speed."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import aiohttp
import psycopg
from aiohttp import web

from sftriggerd.delivery import Dispatcher
from sftriggerd.metrics import Metrics
from sftriggerd.store.base import Store
from sftriggerd.store.postgres import PostgresStore
from sftriggerd.store.sqlite import SqliteStore
from tests.delivery.rig import MS, endpoint, enqueue, new_event, running
from tests.support.receiver import Arrival, Receiver
from tests.support.waiting import eventually

COUNTS_INTERVAL = 200 * MS
STALL_S = 2.0
# 50 count intervals: the gauges must show the store by then.
GAUGE_DEADLINE_S = 10.0


def dead_gauge(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value("sftriggerd_outbox_dead", {"endpoint": "hook"})
    return value or 0.0


async def all_dead(store: Store, count: int) -> bool:
    return len(await store.list_deliveries(status="dead", limit=100)) == count


async def gone(arrival: Arrival) -> web.StreamResponse:
    return web.Response(status=410, text="removed")


async def deliver_three_to_a_gone_hook(
    store: Store, dispatcher: Dispatcher, metrics: Metrics
) -> None:
    """After the stall: three deliveries go dead (real HTTP 410); the dead gauge must say 3."""
    await enqueue(store, new_event("e1"), new_event("e2"), new_event("e3"))
    dispatcher.notify(["hook"])
    await eventually(lambda: all_dead(store, 3))
    await eventually(lambda: dead_gauge(metrics) == 3, timeout_s=GAUGE_DEADLINE_S)


async def test_a_store_stall_leaves_the_outbox_gauges_stale_for_twenty_times_it(
    tmp_path: Path, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    path = tmp_path / "store.db"
    store = SqliteStore(path)
    await store.open()
    receiver.respond = gone
    metrics = Metrics()
    dispatcher = Dispatcher(
        store, [endpoint(receiver.url)], metrics, counts_interval=COUNTS_INTERVAL
    )
    try:
        # Another process (an operator's `sftriggerd deliveries redrive`, a backup) holds the
        # write lock: the store's one thread waits on a write, the count behind it.
        with closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            waiting_write = asyncio.create_task(store.redrive_endpoint("hook"))
            await asyncio.sleep(0.05)
            async with running(dispatcher):
                await asyncio.sleep(STALL_S)
                other.execute("COMMIT")
                assert await waiting_write == 0
                await deliver_three_to_a_gone_hook(store, dispatcher, metrics)
    finally:
        await store.close()


async def test_a_count_held_by_a_postgres_table_lock_leaves_the_gauges_stale(
    postgres_url: str, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    store = PostgresStore(postgres_url)
    await store.open()
    receiver.respond = gone
    metrics = Metrics()
    dispatcher = Dispatcher(
        store, [endpoint(receiver.url)], metrics, counts_interval=COUNTS_INTERVAL
    )
    try:
        async with await psycopg.AsyncConnection.connect(postgres_url) as other:
            await other.execute("LOCK TABLE deliveries IN ACCESS EXCLUSIVE MODE")
            async with running(dispatcher):
                await asyncio.sleep(STALL_S)
                await other.commit()
                await deliver_three_to_a_gone_hook(store, dispatcher, metrics)
    finally:
        await store.close()


async def test_a_failed_count_is_retried_soon_not_after_twenty_times_its_timeout(
    postgres_url: str, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    # One connection in the pool, busy on a statement a table lock holds up: the count
    # waits for the pool, fails (outbox_counts_failed), and is then not tried again for 20
    # times that wait, long after the store is back.
    store = PostgresStore(postgres_url, min_connections=1, max_connections=1, pool_timeout=1.5)
    await store.open()
    receiver.respond = gone
    metrics = Metrics()
    dispatcher = Dispatcher(
        store, [endpoint(receiver.url)], metrics, counts_interval=COUNTS_INTERVAL
    )
    try:
        async with await psycopg.AsyncConnection.connect(postgres_url) as other:
            await other.execute("LOCK TABLE deliveries IN ACCESS EXCLUSIVE MODE")
            holding_the_pool = asyncio.create_task(store.list_deliveries(limit=1))
            await asyncio.sleep(0.2)
            async with running(dispatcher):
                await asyncio.sleep(2 * STALL_S)
                await other.commit()
                assert await holding_the_pool == []
                await deliver_three_to_a_gone_hook(store, dispatcher, metrics)
    finally:
        await store.close()
