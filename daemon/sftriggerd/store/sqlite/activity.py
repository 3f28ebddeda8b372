"""`Store.recent_activity` on SQLite: one status at a time, so each read walks an index of
finished rows by finish time (`deliveries_delivered`) or the dead rows (`deliveries_dead`),
never the delivered history older than the window."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from ..activity import FINISHED_COLUMNS, FINISHED_STATUSES, RecentActivity, SqlActivity
from .ops import dt_required, ts

_PER_MINUTE = """
    SELECT endpoint, CAST(finished_at / 60 AS INTEGER) AS minute, count(*)
    FROM deliveries WHERE status = ? AND finished_at >= ?
    GROUP BY endpoint, minute
"""

_LATEST = f"""
    SELECT {FINISHED_COLUMNS}
    FROM deliveries d JOIN events e ON e.seq = d.event_seq
    WHERE d.status = ? AND d.finished_at >= ?
    ORDER BY d.finished_at DESC, d.id DESC LIMIT ?
"""


def recent_activity(
    db: sqlite3.Connection, now: datetime, since: datetime, latest: int
) -> RecentActivity:
    read = SqlActivity()
    for status in FINISHED_STATUSES:
        for endpoint, minute, count in db.execute(_PER_MINUTE, (status, ts(since))):
            read.add_minute(status, endpoint, minute, count)
        for row in db.execute(_LATEST, (status, ts(since), latest)):
            read.add_finished(row, dt_required)
    return read.activity(int(ts(now) // 60), latest)
