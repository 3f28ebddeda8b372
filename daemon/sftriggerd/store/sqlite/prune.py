"""The SQLite engine's pruning, in bounded steps.

One step is one short transaction: a prune of a long history never holds the write lock for
long, so ingests, claims and outcomes run between its steps (each step goes through the
store's thread like any other work, in turn with it).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from .ops import transaction, ts

# Deliveries deleted per step; events looked at per step of the sweep for events without any.
BATCH_ROWS = 500
# Ids bound in one `IN (...)`: under the 999 parameters an older SQLite allows.
_IDS_PER_QUERY = 500


def prune_delivered(db: sqlite3.Connection, delivered_before: datetime, limit: int) -> int:
    """Deletes up to `limit` delivered deliveries finished before the cut-off with their
    attempts, and their events when no delivery of them is left; returns how many
    deliveries it deleted."""
    cutoff = ts(delivered_before)
    with transaction(db):
        rows = db.execute(
            "SELECT id, event_seq FROM deliveries INDEXED BY deliveries_delivered"
            " WHERE status = 'delivered' AND finished_at < ? ORDER BY finished_at LIMIT ?",
            (cutoff, limit),
        ).fetchall()
        ids = [r[0] for r in rows]
        # Explicitly, not by the cascade alone: that needs foreign_keys=ON on the connection.
        _delete_in(db, "DELETE FROM attempts WHERE delivery_id IN ({marks})", ids)
        _delete_in(db, "DELETE FROM deliveries WHERE id IN ({marks})", ids)
        _delete_in(
            db,
            "DELETE FROM events WHERE seq IN ({marks}) AND NOT EXISTS"
            " (SELECT 1 FROM deliveries d WHERE d.event_seq = events.seq)",
            sorted({r[1] for r in rows}),
        )
    return len(rows)


def prune_undelivered_events(
    db: sqlite3.Connection, delivered_before: datetime, after_seq: int, window: int
) -> int | None:
    """Deletes events stored before the cut-off that have no delivery at all (routed to no
    endpoint), among the `window` events after `after_seq`. Returns the last seq looked at,
    or None when no event is left to look at."""
    cutoff = ts(delivered_before)
    with transaction(db):
        row = db.execute(
            "SELECT max(seq), min(created_at) FROM"
            " (SELECT seq, created_at FROM events WHERE seq > ? ORDER BY seq LIMIT ?)",
            (after_seq, window),
        ).fetchone()
        last_seq, oldest = row
        if last_seq is None or oldest >= cutoff:
            return None  # events are stored in seq order: the rest are younger still
        db.execute(
            "DELETE FROM events WHERE seq > ? AND seq <= ? AND created_at < ? AND NOT EXISTS"
            " (SELECT 1 FROM deliveries d WHERE d.event_seq = events.seq)",
            (after_seq, last_seq, cutoff),
        )
    return int(last_seq)


def _delete_in(db: sqlite3.Connection, sql: str, ids: list[int]) -> None:
    for start in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[start : start + _IDS_PER_QUERY]
        db.execute(sql.format(marks=",".join("?" * len(chunk))), chunk)
