"""Pruning on PostgreSQL, in bounded steps.

Each step is one short transaction over at most `BATCH_ROWS` rows, taken with SKIP LOCKED,
so a prune of a long history never blocks claims, outcomes or another replica's prune: rows
locked by someone else are left to a later prune.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

BATCH_ROWS = 500

# Delivered deliveries finished before the cut-off, their attempts (cascade) and their
# events when no delivery of them is left.
_PRUNE_DELIVERED = """
    WITH doomed AS (
        SELECT id, event_seq FROM deliveries
        WHERE status = 'delivered' AND finished_at < %(cutoff)s
        ORDER BY finished_at LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED),
    gone AS (
        DELETE FROM deliveries d USING doomed WHERE d.id = doomed.id
        RETURNING d.event_seq)
    SELECT count(*), array_agg(DISTINCT event_seq) FROM gone
"""
_PRUNE_EVENTS = """
    DELETE FROM events e WHERE e.seq = ANY(%s)
      AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq)
"""
# Events stored before the cut-off that no delivery ever went to (routed to no endpoint),
# a window of them at a time in seq order.
_PRUNE_UNROUTED = """
    WITH window_ AS (
        SELECT seq, created_at FROM events WHERE seq > %(after)s ORDER BY seq LIMIT %(limit)s),
    doomed AS (
        SELECT e.seq FROM events e JOIN window_ w ON w.seq = e.seq
        WHERE w.created_at < %(cutoff)s
          AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq)
        FOR UPDATE OF e SKIP LOCKED),
    gone AS (DELETE FROM events e USING doomed WHERE e.seq = doomed.seq)
    SELECT max(seq), min(created_at) < %(cutoff)s FROM window_
"""


async def prune_delivered(conn: AsyncConnection[Any], cutoff: datetime, limit: int) -> int:
    async with conn.transaction():
        cursor = await conn.execute(_PRUNE_DELIVERED, {"cutoff": cutoff, "limit": limit})
        row = await cursor.fetchone()
        removed, event_seqs = (int(row[0]), row[1]) if row else (0, None)
        if event_seqs:
            await conn.execute(_PRUNE_EVENTS, (event_seqs,))
    return removed


async def prune_unrouted_events(
    conn: AsyncConnection[Any], cutoff: datetime, after_seq: int, window: int
) -> int | None:
    """Deletes unrouted events older than the cut-off among the `window` events after
    `after_seq`. Returns the last seq looked at, or None when none is left to look at."""
    async with conn.transaction():
        cursor = await conn.execute(
            _PRUNE_UNROUTED, {"after": after_seq, "limit": window, "cutoff": cutoff}
        )
        row = await cursor.fetchone()
    if row is None or row[0] is None or not row[1]:
        return None  # events are stored in seq order: the rest are younger still
    return int(row[0])


async def prune(conn: AsyncConnection[Any], older_than: timedelta) -> int:
    """Deletes what was delivered `older_than` ago or longer (the store's clock), and events
    stored that long ago that went nowhere; returns how many deliveries it deleted."""
    cursor = await conn.execute("SELECT sftriggerd_now() - %s", (older_than,))
    row = await cursor.fetchone()
    assert row is not None
    cutoff: datetime = row[0]
    removed = 0
    while True:
        step = await prune_delivered(conn, cutoff, BATCH_ROWS)
        removed += step
        if step < BATCH_ROWS:
            break
    after: int | None = 0
    while after is not None:
        after = await prune_unrouted_events(conn, cutoff, after, BATCH_ROWS)
    return removed
