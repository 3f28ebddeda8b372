"""`Store.recent_activity` on PostgreSQL: each status read through its partial index by
finish time (`deliveries_delivered`, `deliveries_dead_finished`), with the status written in
the statement (a parameter would leave a prepared statement's generic plan no partial index
to take), so neither the delivered history nor old dead rows are read. One snapshot for all
the reads."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

from ..activity import FINISHED_COLUMNS, RecentActivity, SqlActivity, each_finished_status

_PER_MINUTE = each_finished_status(
    """
    SELECT {status}, endpoint, floor(extract(epoch FROM finished_at) / 60)::bigint AS minute,
        count(*)
    FROM deliveries
    WHERE status = {status} AND finished_at >= %(now)s - %(within)s
    GROUP BY endpoint, minute
    """
)

# Each status's newest `limit`; `SqlActivity` keeps the newest of both.
_LATEST = each_finished_status(
    f"""
    (SELECT {FINISHED_COLUMNS}
    FROM deliveries d JOIN events e ON e.seq = d.event_seq
    WHERE d.status = {{status}} AND d.finished_at >= %(now)s - %(within)s
    ORDER BY d.finished_at DESC, d.id DESC LIMIT %(limit)s)
    """
)


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
        params = {"now": now, "within": within, "limit": latest}
        for status, endpoint, minute, count in await (
            await conn.execute(_PER_MINUTE, params)
        ).fetchall():
            read.add_minute(status, endpoint, int(minute), count)
        for row in await (await conn.execute(_LATEST, params)).fetchall():
            read.add_finished(row, _as_stored)
    return read.activity(int(now.timestamp() // 60), latest)
