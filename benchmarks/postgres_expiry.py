"""The expiry sweep on PostgreSQL over a large backlog, on this machine.

    .venv/bin/python benchmarks/postgres_expiry.py [--pending 1000000] [--overdue 0] [--tries 5]

Creates a database of its own on $SFTRIGGERD_TEST_POSTGRES (postgresql://postgres@127.0.0.1:5432
by default), migrates it with the current code, and fills it in SQL (`generate_series`) with
`--pending` events, each with one pending delivery to the endpoint "hook", whose max_age
clock (`retry_since`) started an hour ago; the first `--overdue` of them started four days
ago instead. The table is analyzed, as autovacuum would have done by then.

It times `--tries` sweeps of one batch (`expire_overdue("hook", 3 days, ...)`, EXPIRE_BATCH
rows) and prints the plan of one more (`EXPLAIN (ANALYZE, BUFFERS)`, rolled back), then drops
the database. No assertions: figures for people (tests/store/test_postgres_expiry_plan.py
checks the plan).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from datetime import timedelta

import psycopg

from sftriggerd.delivery.expiry import EXPIRE_BATCH
from sftriggerd.store.postgres import PostgresStore
from sftriggerd.store.postgres.expiry import _EXPIRE

SERVER = os.environ.get("SFTRIGGERD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
MAX_AGE = timedelta(days=3)

_EVENTS = """
    INSERT INTO events (trigger, event_id, occurred_at, body, created_at)
    SELECT 't', 'evt_' || n, now(), '{}'::bytea, now() FROM generate_series(1, %(pending)s) n
"""
_DELIVERIES = """
    INSERT INTO deliveries (event_seq, endpoint, status, next_attempt_at, created_at, retry_since)
    SELECT seq, 'hook', 'pending', now() + interval '1 hour',
           now() - CASE WHEN seq <= %(overdue)s THEN interval '4 days' ELSE interval '1 hour' END,
           now() - CASE WHEN seq <= %(overdue)s THEN interval '4 days' ELSE interval '1 hour' END
    FROM events
"""


def admin(statement: str) -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(statement.encode())


async def migrate(url: str) -> None:
    store = PostgresStore(url)
    await store.open()
    await store.close()


def fill(url: str, pending: int, overdue: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.transaction():
            conn.execute(_EVENTS.encode(), {"pending": pending})
            conn.execute(_DELIVERIES.encode(), {"overdue": overdue})
        conn.execute(b"VACUUM ANALYZE deliveries")
        conn.execute(b"VACUUM ANALYZE events")


async def time_sweeps(url: str, tries: int) -> list[float]:
    store = PostgresStore(url)
    await store.open()
    took = []
    try:
        for _ in range(tries):
            start = time.perf_counter()
            await store.expire_overdue("hook", MAX_AGE, "expired after max_age 3d", EXPIRE_BATCH)
            took.append(time.perf_counter() - start)
    finally:
        await store.close()
    return took


def plan(url: str) -> str:
    params = {"endpoint": "hook", "max_age": MAX_AGE, "error": "x", "limit": EXPIRE_BATCH}
    with psycopg.connect(url) as conn:
        rows = conn.execute(("EXPLAIN (ANALYZE, BUFFERS) " + _EXPIRE).encode(), params).fetchall()
        conn.rollback()
    return "\n".join(str(row[0]) for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pending", type=int, default=1_000_000)
    parser.add_argument("--overdue", type=int, default=0)
    parser.add_argument("--tries", type=int, default=5)
    args = parser.parse_args()
    name = f"sftriggerd_bench_{uuid.uuid4().hex[:12]}"
    admin(f'CREATE DATABASE "{name}"')
    url = f"{SERVER}/{name}"
    try:
        asyncio.run(migrate(url))
        start = time.perf_counter()
        fill(url, args.pending, args.overdue)
        print(
            f"filled {args.pending} pending ({args.overdue} overdue) in "
            f"{time.perf_counter() - start:.1f} s"
        )
        took = asyncio.run(time_sweeps(url, args.tries))
        print(
            f"expire_overdue, batch {EXPIRE_BATCH}: median {statistics.median(took) * 1000:.1f} ms,"
            f" max {max(took) * 1000:.1f} ms, each {[round(t * 1000, 1) for t in took]}"
        )
        print(plan(url))
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
