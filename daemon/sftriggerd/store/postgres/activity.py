"""`Store.recent_activity` on PostgreSQL: one status at a time, so each read uses the
partial index of its status (`deliveries_delivered` by finish time, `deliveries_dead`),
never the delivered history older than the window. One snapshot for all the reads."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from psycopg import AsyncConnection

from ..activity import FinishedDelivery, FinishedStatus, MinuteTally, RecentActivity, newest

_STATUSES: tuple[FinishedStatus, ...] = ("delivered", "dead")

_PER_MINUTE = """
    SELECT endpoint, floor(extract(epoch FROM finished_at) / 60)::bigint AS minute, count(*)
    FROM deliveries
    WHERE status = %(status)s AND finished_at >= %(now)s - %(within)s
    GROUP BY endpoint, minute
"""

_LATEST = """
    SELECT d.id, d.endpoint, e.trigger, e.event_id, e.record_id, e.change, d.status,
        d.last_status, e.occurred_at, d.finished_at, e.body
    FROM deliveries d JOIN events e ON e.seq = d.event_seq
    WHERE d.status = %(status)s AND d.finished_at >= %(now)s - %(within)s
    ORDER BY d.finished_at DESC, d.id DESC LIMIT %(limit)s
"""


async def recent_activity(
    conn: AsyncConnection[Any], within: timedelta, latest: int
) -> RecentActivity:
    counts: dict[tuple[str, int], list[int]] = {}
    found: list[FinishedDelivery] = []
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        clock = await (await conn.execute("SELECT sftriggerd_now()")).fetchone()
        assert clock is not None
        now = clock[0]
        for index, status in enumerate(_STATUSES):
            params = {"status": status, "now": now, "within": within, "limit": latest}
            for endpoint, minute, count in await (
                await conn.execute(_PER_MINUTE, params)
            ).fetchall():
                counts.setdefault((endpoint, int(minute)), [0, 0])[index] += count
            for row in await (await conn.execute(_LATEST, params)).fetchall():
                found.append(
                    FinishedDelivery(
                        id=row[0],
                        endpoint=row[1],
                        trigger=row[2],
                        event_id=row[3],
                        record_id=row[4],
                        change=row[5],
                        status=row[6],
                        last_status=row[7],
                        occurred_at=row[8],
                        finished_at=row[9],
                        body=bytes(row[10]),
                    )
                )
    tallies = tuple(
        MinuteTally(endpoint, minute, delivered, dead)
        for (endpoint, minute), (delivered, dead) in sorted(counts.items())
    )
    return RecentActivity(
        now_minute=int(now.timestamp() // 60), tallies=tallies, latest=newest(found, latest)
    )
