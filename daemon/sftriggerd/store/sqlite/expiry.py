"""The SQLite engine's dead letters by age (`Store.expire_overdue`)."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from .ops import transaction, ts

# Pending deliveries, and in-flight ones whose lease ran out (nobody will answer for them),
# whose max_age clock started at or before the cut-off; a live lease is left to its answer.
# Read through the index of open deliveries by endpoint and retry_since, in its own order
# (the longest overdue first, a batch at a time): a batch then reads what it expires, not
# every overdue delivery of the endpoint sorted anew.
_EXPIRE = """
    UPDATE deliveries
    SET status = 'dead', finished_at = :now, next_attempt_at = NULL, lease_token = NULL,
        last_error = :error
    WHERE id IN (
        SELECT id FROM deliveries
        WHERE endpoint = :endpoint AND finished_at IS NULL AND retry_since <= :cutoff
          AND (status = 'pending' OR (status = 'in_flight' AND next_attempt_at <= :now))
        ORDER BY retry_since, id LIMIT :limit)
"""


def expire_overdue(
    db: sqlite3.Connection,
    endpoint: str,
    started_before: datetime,
    error: str,
    now: datetime,
    limit: int,
) -> int:
    params = {
        "endpoint": endpoint,
        "cutoff": ts(started_before),
        "error": error,
        "now": ts(now),
        "limit": limit,
    }
    with transaction(db):
        cursor = db.execute(_EXPIRE, params)
    return cursor.rowcount
