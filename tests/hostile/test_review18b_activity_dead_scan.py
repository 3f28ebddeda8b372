"""The status page's "Last hour" reads (`Store.recent_activity`) promise to read finished rows
by their finish time through an index, never the whole table. Dead deliveries are kept until
redriven or deleted: an endpoint down for a week leaves hundreds of thousands of them. On
SQLite every read of the page (every refresh, every few seconds) runs on the store's one
thread, the thread every claim, ingest and outcome of every endpoint waits for; so work that
grows with the old dead rows of one endpoint slows the delivery of all the others.

Measured in SQLite virtual-machine steps and in the rows PostgreSQL's plan reads
(deterministic, no timing): dead rows that finished days before the window must cost the read
(almost) nothing. PostgreSQL's index of dead rows is by (endpoint, id), not by finish time."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from sftriggerd.store.postgres import PostgresStore
from sftriggerd.store.postgres import activity as postgres_activity
from sftriggerd.store.records import Checkpoint, Dead, NewEvent
from sftriggerd.store.sqlite import SqliteStore
from sftriggerd.store.sqlite.activity import recent_activity
from tests.support.clock import FrozenClock

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


async def store_with_old_dead(path: Path, old_dead: int) -> None:
    """One real dead delivery, then `old_dead` copies of it finished a week ago."""
    clock = FrozenClock(T0 - timedelta(days=7))
    store = SqliteStore(path, clock=clock)
    await store.open()
    try:
        event = NewEvent(
            event_id="e1",
            record_id="001000000000001AAA",
            occurred_at=T0 - timedelta(days=7),
            body=b"{}",
            endpoints=("down",),
            ordered_endpoints=frozenset(),
            order_key=None,
        )
        await store.ingest("t", [event], Checkpoint("t", {"n": 1}))
        [claim] = await store.claim_due("down", 10, timedelta(seconds=30))
        assert await store.record_outcomes([(claim, Dead(503, "down"))]) == [True]
    finally:
        await store.close()
    with closing(sqlite3.connect(path)) as db:
        db.execute(
            """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
            INSERT INTO deliveries (event_seq, endpoint, status, attempts, last_status,
                last_error, created_at, retry_since, finished_at)
            SELECT d.event_seq, d.endpoint, d.status, d.attempts, d.last_status, d.last_error,
                d.created_at, d.retry_since, d.finished_at
            FROM deliveries d, n
            """,
            (old_dead - 1,),
        )
        db.commit()


def steps_of_one_read(path: Path) -> int:
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    with closing(sqlite3.connect(path)) as db:
        db.set_progress_handler(count, 100)
        found = recent_activity(db, T0, T0 - HOUR, 20)
    assert found.tallies == () and found.latest == ()  # nothing finished in the window
    return steps


async def test_old_dead_rows_do_not_cost_the_last_hours_read(tmp_path: Path) -> None:
    few, many = tmp_path / "few.db", tmp_path / "many.db"
    await store_with_old_dead(few, 1_000)
    await store_with_old_dead(many, 100_000)
    with closing(sqlite3.connect(many)) as db:
        assert db.execute("SELECT count(*) FROM deliveries WHERE status = 'dead'").fetchone() == (
            100_000,
        )
    # 100 times the old dead rows, none of them in the window: the read may not cost
    # much more (it costs about 100 times more while it walks every dead row).
    assert steps_of_one_read(many) <= 3 * steps_of_one_read(few) + 100


def rows_read(plan: dict[str, Any]) -> int:
    """Rows a plan node and its children took from a table or index and then threw away,
    plus those they returned from a scan."""
    own = int(plan.get("Rows Removed by Filter", 0)) + int(
        plan.get("Rows Removed by Index Recheck", 0)
    )
    if "Scan" in str(plan.get("Node Type", "")):
        own += int(plan.get("Actual Rows", 0))
    return own + sum(rows_read(child) for child in plan.get("Plans", []))


async def test_old_dead_rows_are_not_read_by_the_last_hours_read_on_postgres(
    postgres_url: str,
) -> None:
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        event = NewEvent(
            event_id="e1",
            record_id="001000000000001AAA",
            occurred_at=T0,
            body=b"{}",
            endpoints=("down",),
            ordered_endpoints=frozenset(),
            order_key=None,
        )
        await store.ingest("t", [event], Checkpoint("t", {"n": 1}))
        [claim] = await store.claim_due("down", 10, timedelta(seconds=30))
        assert await store.record_outcomes([(claim, Dead(503, "down"))]) == [True]
    finally:
        await store.close()
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute(
            """
            INSERT INTO deliveries (event_seq, endpoint, status, attempts, last_status,
                last_error, created_at, retry_since, finished_at)
            SELECT d.event_seq, d.endpoint, d.status, d.attempts, d.last_status, d.last_error,
                d.created_at - interval '7 days', d.retry_since - interval '7 days',
                d.finished_at - interval '7 days'
            FROM deliveries d, generate_series(1, 50000)
            """
        )
        await conn.execute("DELETE FROM deliveries WHERE finished_at > now() - interval '1 day'")
        await conn.execute("ANALYZE deliveries")
        params = {"status": "dead", "now": datetime.now(UTC), "within": HOUR, "limit": 20}
        read = 0
        for sql in (postgres_activity._PER_MINUTE, postgres_activity._LATEST):
            cursor = await conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
            found = await cursor.fetchone()
            assert found is not None
            read += rows_read(found[0][0]["Plan"])
    # 50 000 dead rows, all a week old, none in the window: the read should touch none.
    assert read <= 100
