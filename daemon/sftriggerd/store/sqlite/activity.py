"""`Store.recent_activity` on SQLite: one status at a time, so each read walks an index of
finished rows by finish time (`deliveries_delivered`) or the dead rows (`deliveries_dead`),
never the delivered history older than the window."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from ..activity import FinishedDelivery, FinishedStatus, MinuteTally, RecentActivity, newest
from .ops import dt_required, ts

_STATUSES: tuple[FinishedStatus, ...] = ("delivered", "dead")

_PER_MINUTE = """
    SELECT endpoint, CAST(finished_at / 60 AS INTEGER) AS minute, count(*)
    FROM deliveries WHERE status = ? AND finished_at >= ?
    GROUP BY endpoint, minute
"""

_LATEST = """
    SELECT d.id, d.endpoint, e.trigger, e.event_id, e.record_id, e.change, d.status,
        d.last_status, e.occurred_at, d.finished_at, e.body
    FROM deliveries d JOIN events e ON e.seq = d.event_seq
    WHERE d.status = ? AND d.finished_at >= ?
    ORDER BY d.finished_at DESC, d.id DESC LIMIT ?
"""


def recent_activity(
    db: sqlite3.Connection, now: datetime, since: datetime, latest: int
) -> RecentActivity:
    counts: dict[tuple[str, int], list[int]] = {}
    found: list[FinishedDelivery] = []
    for index, status in enumerate(_STATUSES):
        for endpoint, minute, count in db.execute(_PER_MINUTE, (status, ts(since))):
            counts.setdefault((endpoint, minute), [0, 0])[index] += count
        for row in db.execute(_LATEST, (status, ts(since), latest)):
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
                    occurred_at=dt_required(row[8]),
                    finished_at=dt_required(row[9]),
                    body=bytes(row[10]),
                )
            )
    tallies = tuple(
        MinuteTally(endpoint, minute, delivered, dead)
        for (endpoint, minute), (delivered, dead) in sorted(counts.items())
    )
    return RecentActivity(
        now_minute=int(ts(now) // 60), tallies=tallies, latest=newest(found, latest)
    )
