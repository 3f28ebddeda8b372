"""The PostgreSQL claim's plan on a table just filled, before any ANALYZE: it must walk the
claim index from the front and stop at its batch, not read and sort every open delivery of
the endpoint (what the planner chose for the old query while the statistics still said
"nearly empty", costing a backlog drain most of its time)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import psycopg
import pytest

from sftriggerd.store.postgres import PostgresStore
from sftriggerd.store.postgres.claims import _DUE

from .test_store_contract import checkpoint, event

BACKLOG = 2_000
PART = 500


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def claim_plan(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        analyzed = conn.execute(
            "SELECT last_analyze, last_autoanalyze FROM pg_stat_user_tables"
            " WHERE relname = 'deliveries'"
        ).fetchone()
        assert analyzed == (None, None), "the table was analyzed; the plan proves nothing"
        rows = conn.execute(
            ("EXPLAIN " + _DUE).encode(), {"endpoint": "hook", "limit": 64}
        ).fetchall()
    return "\n".join(str(row[0]) for row in rows)


async def test_a_claim_on_a_backlog_just_ingested_walks_the_claim_index(
    pg: PostgresStore, postgres_url: str
) -> None:
    for start in range(0, BACKLOG, PART):
        batch = [event(n, record=f"r{n}") for n in range(start, start + PART)]
        await pg.ingest("t", batch, checkpoint(start + PART))
    plan = claim_plan(postgres_url)
    assert "Index Scan using deliveries_claim on deliveries d" in plan, plan
    assert "Sort" not in plan, plan
    assert "Seq Scan" not in plan, plan
    # The per-record check probes the record's open changes, not the endpoint's.
    assert "Index Scan using deliveries_order on deliveries other" in plan, plan
    assert "Index Cond: ((endpoint = d.endpoint) AND (order_key = d.order_key))" in plan, plan
    claimed = await pg.claim_due("hook", 64, timedelta(seconds=30))
    assert [c.event_id for c in claimed] == [f"evt_{n}" for n in range(64)]
