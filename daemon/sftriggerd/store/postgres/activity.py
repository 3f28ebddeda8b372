"""`Store.recent_activity` on PostgreSQL: one status at a time, so each read uses the
partial index of its status (`deliveries_delivered` by finish time, `deliveries_dead`),
never the delivered history older than the window. One snapshot for all the reads."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

from ..activity import FINISHED_COLUMNS, FINISHED_STATUSES, RecentActivity, SqlActivity

_PER_MINUTE = """
    SELECT endpoint, floor(extract(epoch FROM finished_at) / 60)::bigint AS minute, count(*)
    FROM deliveries
    WHERE status = %(status)s AND finished_at >= %(now)s - %(within)s
    GROUP BY endpoint, minute
"""

_LATEST = f"""
    SELECT {FINISHED_COLUMNS}
    FROM deliveries d JOIN events e ON e.seq = d.event_seq
    WHERE d.status = %(status)s AND d.finished_at >= %(now)s - %(within)s
    ORDER BY d.finished_at DESC, d.id DESC LIMIT %(limit)s
"""


def _as_stored(at: datetime) -> datetime:
    return at  # psycopg reads timestamptz as an aware datetime already


async def recent_activity(
    conn: AsyncConnection[Any], within: timedelta, latest: int
) -> RecentActivity:
    read = SqlActivity()
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        clock = await (await conn.execute("SELECT sftriggerd_now()")).fetchone()
        assert clock is not None
        now = clock[0]
        for status in FINISHED_STATUSES:
            params = {"status": status, "now": now, "within": within, "limit": latest}
            for endpoint, minute, count in await (
                await conn.execute(_PER_MINUTE, params)
            ).fetchall():
                read.add_minute(status, endpoint, int(minute), count)
            for row in await (await conn.execute(_LATEST, params)).fetchall():
                read.add_finished(row, _as_stored)
    return read.activity(int(now.timestamp() // 60), latest)
