"""Dead letters by age on PostgreSQL (`Store.expire_overdue`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from .text import readable

# Pending deliveries, and in-flight ones whose lease ran out (nobody will answer for them),
# whose max_age clock started at or before the cut-off; a live lease is left to its answer.
# Oldest first, a batch at a time; rows another replica is claiming right now are skipped
# (they are in flight, or will be, under a live lease).
_EXPIRE = """
    UPDATE deliveries
    SET status = 'dead', finished_at = now(), next_attempt_at = NULL, lease_token = NULL,
        last_error = %(error)s
    WHERE id IN (
        SELECT id FROM deliveries
        WHERE endpoint = %(endpoint)s AND finished_at IS NULL AND retry_since <= %(cutoff)s
          AND (status = 'pending' OR (status = 'in_flight' AND next_attempt_at <= now()))
        ORDER BY id LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED)
"""


async def expire_overdue(
    conn: AsyncConnection[Any], endpoint: str, started_before: datetime, error: str, limit: int
) -> int:
    async with conn.transaction():
        cursor = await conn.execute(
            _EXPIRE,
            {
                "endpoint": endpoint,
                "cutoff": started_before,
                "error": readable(error),
                "limit": limit,
            },
        )
    return cursor.rowcount
