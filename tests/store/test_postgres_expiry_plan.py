"""The PostgreSQL expiry sweep over a large backlog (at start and every 30 s per endpoint).
It took the endpoint's open deliveries `ORDER BY id` with no index on retry_since, so a sweep
with nothing overdue read the whole table: 240 ms at a million pending (benchmarks/
postgres_expiry.py), 2 ms through deliveries_overdue. Its plan must be a walk of that index
from the front, with the table's statistics fresh or not, and reading it must cost the
same at ten times the backlog. And the sweep must still take what a full scan of the table
says is overdue, the longest overdue first: a hypothesis test over arbitrary rows and times."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

import psycopg
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sftriggerd.delivery.expiry import EXPIRE_BATCH
from sftriggerd.store.postgres import expiry

MAX_AGE = timedelta(days=3)
ENDPOINTS = ("a", "b")
STATUSES = ("pending", "in_flight", "delivered", "dead")

# `backlog` pending deliveries of endpoint "a" whose clock started an hour ago, and
# `overdue` more four days ago; as a bulk ingest leaves them, not analyzed.
_FILL = """
    WITH event AS (
        INSERT INTO events (trigger, event_id, occurred_at, body)
        VALUES ('t', 'e' || %(start)s, now(), '{}') RETURNING seq)
    INSERT INTO deliveries (event_seq, endpoint, status, next_attempt_at, retry_since)
    SELECT seq, 'a', 'pending', now() + interval '1 hour',
           now() - CASE WHEN n <= %(overdue)s THEN interval '4 days' ELSE interval '1 hour' END
    FROM event, generate_series(1, %(backlog)s + %(overdue)s) n
"""


def fill(url: str, backlog: int, overdue: int = 0) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        params = {"start": backlog, "backlog": backlog, "overdue": overdue}
        conn.execute(_FILL.encode(), params)


def sweep_plan(url: str, analyze: bool = False) -> str:
    """The plan of one sweep of endpoint "a" (run, with `analyze`, and rolled back)."""
    params = {"endpoint": "a", "max_age": MAX_AGE, "error": "x", "limit": EXPIRE_BATCH}
    explain = "EXPLAIN (ANALYZE, BUFFERS) " if analyze else "EXPLAIN "
    with psycopg.connect(url) as conn:
        rows = conn.execute((explain + expiry._EXPIRE).encode(), params).fetchall()
        conn.rollback()
    return "\n".join(str(row[0]) for row in rows)


def assert_walks_the_overdue_index(plan: str) -> None:
    """The sweep's read (the subquery, `deliveries_1`): the index from the front, nothing
    sorted. (The UPDATE may find the batch it read by a scan of a small table: cheaper, to
    the planner, than a thousand probes of the primary key.)"""
    assert "Index Scan using deliveries_overdue on deliveries deliveries_1" in plan, plan
    assert "Seq Scan on deliveries deliveries_1" not in plan, plan
    assert "Sort" not in plan, plan


def buffers_read(url: str) -> int:
    plan = sweep_plan(url, analyze=True)
    found = re.search(r"Buffers: shared hit=(\d+)(?: read=(\d+))?", plan)
    assert found, plan
    return int(found.group(1)) + int(found.group(2) or 0)


def test_a_sweep_walks_the_overdue_index_whatever_the_statistics_say(postgres_url: str) -> None:
    fill(postgres_url, 5_000)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        analyzed = conn.execute(
            "SELECT last_analyze, last_autoanalyze FROM pg_stat_user_tables"
            " WHERE relname = 'deliveries'"
        ).fetchone()
    assert analyzed == (None, None), "the table was analyzed; the plan proves nothing"
    assert_walks_the_overdue_index(sweep_plan(postgres_url))
    fill(postgres_url, 0, overdue=3 * EXPIRE_BATCH)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("ANALYZE deliveries")
    assert_walks_the_overdue_index(sweep_plan(postgres_url))


def test_a_sweep_with_nothing_overdue_reads_the_same_at_ten_times_the_backlog(
    postgres_url: str,
) -> None:
    fill(postgres_url, 2_000)
    short = buffers_read(postgres_url)
    fill(postgres_url, 18_000)
    long = buffers_read(postgres_url)
    # A read of the table would be some 200 pages more.
    assert long <= short + 5, (short, long)


# Arbitrary rows that satisfy the table's constraints: an open row has a due time, a lease
# exactly in flight, finished_at exactly when finished; times on a grid of minutes from the
# transaction's now(), so ties with the cut-off and "now" happen.
rows = st.lists(
    st.tuples(
        st.sampled_from(ENDPOINTS),
        st.sampled_from(STATUSES),
        st.integers(0, 10),  # retry_since
        st.integers(0, 10),  # next_attempt_at
        st.integers(0, 10),  # finished_at
    ),
    max_size=40,
)

_INSERT = """
    INSERT INTO deliveries (event_seq, endpoint, status, next_attempt_at, lease_token,
                            retry_since, finished_at)
    VALUES (%(seq)s, %(endpoint)s, %(status)s, now() + %(due)s, %(lease)s,
            now() + %(since)s, now() + %(finished)s)
"""
# The sweep's question asked of every row, through no index.
_OVERDUE_BY_SCAN = """
    SELECT id FROM deliveries
    WHERE endpoint = %(endpoint)s AND finished_at IS NULL
      AND retry_since <= sftriggerd_now() - %(max_age)s
      AND (status = 'pending' OR (status = 'in_flight' AND next_attempt_at <= sftriggerd_now()))
    ORDER BY retry_since, id
"""


Drawn = list[tuple[str, str, int, int, int]]


async def insert(conn: psycopg.AsyncConnection[Any], drawn: Drawn) -> None:
    event = await conn.execute(
        "INSERT INTO events (trigger, event_id, occurred_at, body)"
        " VALUES ('t', 'e', now(), '') RETURNING seq"
    )
    [seq] = await event.fetchone() or (None,)
    for n, (endpoint, status, since, due, finished) in enumerate(drawn):
        is_open = status in ("pending", "in_flight")
        await conn.execute(
            _INSERT.encode(),
            {
                "seq": seq,
                "endpoint": endpoint,
                "status": status,
                "due": timedelta(minutes=due) if is_open else None,
                "lease": f"lease{n}" if status == "in_flight" else None,
                "since": timedelta(minutes=since),
                "finished": None if is_open else timedelta(minutes=finished),
            },
        )


async def ids(conn: psycopg.AsyncConnection[Any], sql: str, params: dict[str, Any]) -> list[int]:
    cursor = await conn.execute(sql.encode(), params)
    return [row[0] for row in await cursor.fetchall()]


async def sweep_matches_a_full_scan(url: str, drawn: Drawn, now: int, age: int, batch: int) -> None:
    """In one transaction (so now() is one instant), rolled back: the rows inserted, the
    store's clock put `now` minutes ahead, then each endpoint swept by batches of `batch`;
    the first batch must be the longest overdue, and the whole sweep every overdue row."""
    max_age = timedelta(minutes=age)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await insert(conn, drawn)
        await conn.execute(
            "SELECT set_config('sftriggerd.clock_shift', %s, true)", (f"{now} minutes",)
        )
        for endpoint in ENDPOINTS:
            await conn.execute("SET LOCAL enable_indexscan = off")
            await conn.execute("SET LOCAL enable_bitmapscan = off")
            expected = await ids(conn, _OVERDUE_BY_SCAN, {"endpoint": endpoint, "max_age": max_age})
            await conn.execute("RESET enable_indexscan")
            await conn.execute("RESET enable_bitmapscan")
            swept = []
            while n := await expiry.expire_overdue(
                conn, endpoint, max_age, f"old{len(swept)}", batch
            ):
                swept.append(n)
            batches = await ids(
                conn,
                "SELECT id FROM deliveries WHERE endpoint = %(endpoint)s AND last_error = 'old0'"
                " ORDER BY id",
                {"endpoint": endpoint},
            )
            assert batches == sorted(expected[:batch]), (endpoint, expected)
            gone = await ids(
                conn,
                "SELECT id FROM deliveries WHERE endpoint = %(endpoint)s"
                " AND last_error LIKE 'old%%' ORDER BY retry_since, id",
                {"endpoint": endpoint},
            )
            assert gone == expected and sum(swept) == len(expected), endpoint
        await conn.rollback()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(rows, st.integers(0, 11), st.integers(0, 11), st.integers(1, 5))
# Stored first, overdue last (a redrive restarts the clock): the batch takes the other one.
@example([("a", "pending", 5, 0, 0), ("a", "pending", 0, 0, 0)], 10, 0, 1)
def test_the_sweep_takes_what_a_full_scan_says_is_overdue(
    postgres_url: str, drawn: Drawn, now: int, age: int, batch: int
) -> None:
    asyncio.run(sweep_matches_a_full_scan(postgres_url, drawn, now, age, batch))
