"""Dead letters by age on PostgreSQL (`Store.expire_overdue`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from psycopg import AsyncConnection

from .text import readable

# Pending deliveries, and in-flight ones whose lease ran out (nobody will answer for them),
# whose max_age clock started `max_age` or longer ago; a live lease is left to its answer.
# Oldest clock first (by id among equal ones), a batch at a time; rows another replica is
# claiming right now are skipped (they are in flight, or will be, under a live lease).
# Read through deliveries_overdue, whose predicate `finished_at IS NULL` and the bound on
# retry_since imply, in its own order: from the front of the endpoint's open deliveries, up
# to the cut-off or the LIMIT, so a sweep reads what it expires, not every open delivery.
_EXPIRE = """
    UPDATE deliveries
    SET status = 'dead', finished_at = sftriggerd_now(), next_attempt_at = NULL, lease_token = NULL,
        last_error = %(error)s
    WHERE id IN (
        SELECT id FROM deliveries
        WHERE endpoint = %(endpoint)s AND finished_at IS NULL
          AND retry_since <= sftriggerd_now() - %(max_age)s
          AND (status = 'pending'
               OR (status = 'in_flight' AND next_attempt_at <= sftriggerd_now()))
        ORDER BY retry_since, id LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED)
"""


async def expire_overdue(
    conn: AsyncConnection[Any], endpoint: str, max_age: timedelta, error: str, limit: int
) -> int:
    async with conn.transaction():
        cursor = await conn.execute(
            _EXPIRE,
            {
                "endpoint": endpoint,
                "max_age": max_age,
                "error": readable(error),
                "limit": limit,
            },
        )
    return cursor.rowcount
