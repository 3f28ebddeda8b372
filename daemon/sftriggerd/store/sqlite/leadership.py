"""The SQLite engine's leadership: trigger leases with epochs, replica heartbeats, and the
fence check that `ingest` and `rewind` run inside their transaction.

One SQLite file serves one process, so in practice its one replica wins every lease; the
same rules hold anyway, so that the daemon runs the same code on every engine.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from ..leadership import Fence, LeaseLostError, Replica, TriggerLease
from .ops import dt, dt_required, transaction, ts

_LEASE_COLUMNS = "trigger, holder, epoch, acquired_at, expires_at"


def _lease(row: tuple[str, str, int, float, float], now: datetime) -> TriggerLease:
    return TriggerLease(
        trigger=row[0],
        holder=row[1],
        epoch=row[2],
        acquired_at=dt_required(row[3]),
        expires_at=dt_required(row[4]),
        live=row[4] > ts(now),
    )


def check_fence(db: sqlite3.Connection, trigger: str, fence: Fence, now: datetime) -> None:
    """Raises `LeaseLostError` unless the fence holds the trigger's running lease. Called
    inside the writer's transaction: BEGIN IMMEDIATE holds the write lock, so no takeover
    can commit between this check and the writer's commit."""
    row = db.execute(
        "SELECT holder, epoch, expires_at FROM trigger_leases WHERE trigger = ?", (trigger,)
    ).fetchone()
    if row is None or (row[0], row[1]) != (fence.replica, fence.epoch) or row[2] <= ts(now):
        raise LeaseLostError(trigger, fence)


def acquire(
    db: sqlite3.Connection, trigger: str, replica: str, lasting: timedelta, now: datetime
) -> TriggerLease | None:
    with transaction(db):
        row = db.execute(
            f"SELECT {_LEASE_COLUMNS} FROM trigger_leases WHERE trigger = ?", (trigger,)
        ).fetchone()
        if row is not None and row[4] > ts(now) and row[1] != replica:
            return None
        # Free, or held under this replica's name by an earlier process of it (a restart):
        # the next epoch either way, which fences that process out should it still run.
        epoch = (row[2] if row is not None else 0) + 1
        db.execute(
            "INSERT INTO trigger_leases (trigger, holder, epoch, acquired_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (trigger) DO UPDATE SET"
            " holder = excluded.holder, epoch = excluded.epoch,"
            " acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
            (trigger, replica, epoch, ts(now), ts(now + lasting)),
        )
    return TriggerLease(
        trigger=trigger,
        holder=replica,
        epoch=epoch,
        acquired_at=now,
        expires_at=now + lasting,
        live=lasting > timedelta(0),
        previous_ended_at=dt(min(row[4], ts(now))) if row is not None else None,
    )


def renew(
    db: sqlite3.Connection,
    replica: str,
    epochs: Mapping[str, int],
    lasting: timedelta,
    now: datetime,
) -> list[TriggerLease]:
    renewed: list[TriggerLease] = []
    with transaction(db):
        for trigger, epoch in sorted(epochs.items()):
            row = db.execute(
                "UPDATE trigger_leases SET expires_at = ?"
                " WHERE trigger = ? AND holder = ? AND epoch = ? AND expires_at > ?"
                f" RETURNING {_LEASE_COLUMNS}",
                (ts(now + lasting), trigger, replica, epoch, ts(now)),
            ).fetchone()
            if row is not None:
                renewed.append(_lease(row, now))
    return renewed


def release(db: sqlite3.Connection, trigger: str, fence: Fence, now: datetime) -> bool:
    with transaction(db):
        cursor = db.execute(
            "UPDATE trigger_leases SET expires_at = ?"
            " WHERE trigger = ? AND holder = ? AND epoch = ? AND expires_at > ?",
            (ts(now), trigger, fence.replica, fence.epoch, ts(now)),
        )
    return cursor.rowcount == 1


def leases(db: sqlite3.Connection, now: datetime) -> list[TriggerLease]:
    rows = db.execute(f"SELECT {_LEASE_COLUMNS} FROM trigger_leases ORDER BY trigger")
    return [_lease(row, now) for row in rows]


def heartbeat(db: sqlite3.Connection, replica: str, forget_after: timedelta, now: datetime) -> None:
    with transaction(db):
        db.execute(
            "INSERT INTO replicas (name, started_at, heartbeat_at) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
            (replica, ts(now), ts(now)),
        )
        db.execute(
            "DELETE FROM replicas WHERE heartbeat_at < ? AND name <> ?",
            (ts(now - forget_after), replica),
        )


def retire(db: sqlite3.Connection, replica: str) -> None:
    with transaction(db):
        db.execute("DELETE FROM replicas WHERE name = ?", (replica,))


def replicas(db: sqlite3.Connection, seen_within: timedelta | None, now: datetime) -> list[Replica]:
    since = ts(now - seen_within) if seen_within is not None else float("-inf")
    rows = db.execute(
        "SELECT name, started_at, heartbeat_at FROM replicas WHERE heartbeat_at >= ? ORDER BY name",
        (since,),
    )
    return [Replica(row[0], dt_required(row[1]), dt_required(row[2])) for row in rows]


def fence_check(
    trigger: str, fence: Fence | None, now: datetime
) -> Callable[[sqlite3.Connection], None] | None:
    """The check a fenced write runs first in its transaction; None without a fence."""
    if fence is None:
        return None
    return lambda db: check_fence(db, trigger, fence, now)
