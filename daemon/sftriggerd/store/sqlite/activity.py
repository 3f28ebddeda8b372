"""`Store.recent_activity` on SQLite: each status read through its partial index by finish
time (`deliveries_delivered`, `deliveries_dead_finished`), named with INDEXED BY because
without statistics the planner prefers `deliveries_dead` (status, id), which walks every dead
row however old; so neither the delivered history nor old dead rows are read."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from ..activity import FINISHED_COLUMNS, RecentActivity, SqlActivity, each_finished_status
from .ops import dt_required, ts

_PER_MINUTE = each_finished_status(
    """
    SELECT {status}, endpoint, CAST(finished_at / 60 AS INTEGER) AS minute, count(*)
    FROM deliveries INDEXED BY {index}
    WHERE status = {status} AND finished_at >= :since
    GROUP BY endpoint, minute
    """
)

# Each status's newest `limit`; `SqlActivity` keeps the newest of both.
_LATEST = each_finished_status(
    f"""
    SELECT * FROM (
        SELECT {FINISHED_COLUMNS}
        FROM deliveries d INDEXED BY {{index}} JOIN events e ON e.seq = d.event_seq
        WHERE d.status = {{status}} AND d.finished_at >= :since
        ORDER BY d.finished_at DESC, d.id DESC LIMIT :limit
    )
    """
)


def recent_activity(
    db: sqlite3.Connection, now: datetime, since: datetime, latest: int
) -> RecentActivity:
    read = SqlActivity()
    params = {"since": ts(since), "limit": latest}
    for status, endpoint, minute, count in db.execute(_PER_MINUTE, params):
        read.add_minute(status, endpoint, minute, count)
    for row in db.execute(_LATEST, params):
        read.add_finished(row, dt_required)
    return read.activity(int(ts(now) // 60), latest)
