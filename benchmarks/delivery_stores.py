"""The store engines `delivery.py` runs its durable legs on, each leg on a fresh store: SQLite
(a file in a temporary directory) and PostgreSQL (a database of its own on the server the URL
names, created for the leg and dropped after it). And the PostgreSQL leg with two dispatching
processes on one database, woken by the store's notifications, as replicas run.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import psycopg
from delivery_workload import run_on
from psycopg.conninfo import make_conninfo

from sftriggerd.config.settings import EndpointSettings
from sftriggerd.delivery import Dispatcher
from sftriggerd.logs import configure_logging
from sftriggerd.metrics import Metrics
from sftriggerd.store.base import Store
from sftriggerd.store.postgres import PostgresStore
from sftriggerd.store.sqlite import SqliteStore

# Connections per store: a dispatcher's claims, outcome writes and gauges, and the ingests.
POOL_SIZE = 10


@dataclass(frozen=True)
class Engine:
    """A store engine to run the durable legs on: each leg gets a fresh store."""

    name: str
    fresh: Callable[[str], AbstractAsyncContextManager[Store]]  # by leg name; not opened
    latencies: Callable[[Store], Awaitable[list[float]]]  # ingest to 2xx, s; store open


def sqlite_engine(directory: Path) -> Engine:
    @asynccontextmanager
    async def fresh(leg: str) -> AsyncIterator[Store]:
        yield SqliteStore(directory / f"{leg}.db")

    async def latencies(store: Store) -> list[float]:
        assert isinstance(store, SqliteStore)
        with sqlite3.connect(store.path) as db:
            query = "SELECT finished_at - created_at FROM deliveries WHERE status = 'delivered'"
            return [row[0] for row in db.execute(query)]

    return Engine("sqlite", fresh, latencies)


@asynccontextmanager
async def postgres_database(server_url: str) -> AsyncIterator[str]:
    """A new, empty database on the server; its URL. Dropped after, whatever happened."""
    name = f"sftriggerd_bench_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(server_url, autocommit=True) as admin:
        await admin.execute(f'CREATE DATABASE "{name}"'.encode())
        try:
            yield make_conninfo(server_url, dbname=name)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def postgres_engine(server_url: str) -> Engine:
    @asynccontextmanager
    async def fresh(leg: str) -> AsyncIterator[Store]:
        async with postgres_database(server_url) as url:
            yield PostgresStore(url, max_connections=POOL_SIZE)

    async def latencies(store: Store) -> list[float]:
        assert isinstance(store, PostgresStore)
        async with await psycopg.AsyncConnection.connect(store.url) as conn:
            cursor = await conn.execute(
                "SELECT extract(epoch FROM finished_at - created_at)::float8 FROM deliveries"
                " WHERE status = 'delivered'"
            )
            return [row[0] for row in await cursor.fetchall()]

    return Engine("postgresql", fresh, latencies)


# --- two dispatching processes on one PostgreSQL database ------------------------------


def dispatch_in_process(
    url: str, hook: EndpointSettings, control: Connection, loop: str = "asyncio"
) -> None:
    """A replica: a dispatcher on its own store, listening for wake-ups, on the event loop
    `loop`. Sends "ready", dispatches from "go" to "stop", then sends its CPU seconds in
    between."""
    configure_logging("warning")
    run_on(loop, _dispatch(url, hook, control))


async def _dispatch(url: str, hook: EndpointSettings, control: Connection) -> None:
    loop = asyncio.get_running_loop()
    store = PostgresStore(url, max_connections=POOL_SIZE)
    await store.open()
    try:
        dispatcher = Dispatcher(store, [hook], Metrics(), wake_ups=store)
        control.send("ready")
        await loop.run_in_executor(None, control.recv)
        cpu, stopping = time.process_time(), asyncio.Event()
        running = asyncio.create_task(dispatcher.run(stopping))
        await loop.run_in_executor(None, control.recv)
        stopping.set()
        await running
        control.send(time.process_time() - cpu)
    finally:
        await store.close()


async def delivered_count(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute("SELECT count(*) FROM deliveries WHERE status = 'delivered'")
        row = await cursor.fetchone()
        return int(row[0]) if row else 0


@dataclass(frozen=True)
class Replicas:
    """Timings of a leg run by several dispatching processes."""

    elapsed_s: float
    cpu_s: float  # the dispatching processes' CPU, summed
    latencies_s: list[float]
    ingest_s: float


async def replicas_leg(
    server_url: str,
    hook: EndpointSettings,
    processes: int,
    backlog: bool,
    feed: Callable[[Store], Awaitable[float]],
    count: int,
    loop: str = "asyncio",
) -> Replicas:
    """`processes` dispatching processes on one fresh database; this process ingests (all
    first when `backlog`, else while they deliver). Timed from "go" (backlog) or the first
    ingest (live) until every delivery is done."""
    context = multiprocessing.get_context("spawn")
    engine = postgres_engine(server_url)
    async with engine.fresh("replicas") as store:
        assert isinstance(store, PostgresStore)
        await store.open()
        controls: list[Connection] = []
        children = []
        try:
            for _ in range(processes):
                ours, theirs = context.Pipe()
                child = context.Process(
                    target=dispatch_in_process, args=(store.url, hook, theirs, loop)
                )
                child.start()
                controls.append(ours)
                children.append(child)
            for control in controls:
                await asyncio.to_thread(control.recv)  # "ready"
            ingest_s = await feed(store) if backlog else 0.0
            started = time.perf_counter()
            for control in controls:
                control.send("go")
            if not backlog:
                ingest_s = await feed(store)
            while await delivered_count(store.url) < count:
                await asyncio.sleep(0.005)
            elapsed_s = time.perf_counter() - started
            for control in controls:
                control.send("stop")
            cpu_s = sum([await asyncio.to_thread(control.recv) for control in controls])
            latencies = await engine.latencies(store)
        finally:
            for child in children:
                await asyncio.to_thread(child.join, 30)
                if child.is_alive():
                    child.terminate()
            await store.close()
    return Replicas(elapsed_s, cpu_s, latencies, ingest_s)
