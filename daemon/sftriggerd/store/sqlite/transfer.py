"""The SQLite engine's side of a move (`store.transfer`): reading every row in key order, and
writing an export into an empty file.

Both hold the file's write lock (BEGIN IMMEDIATE) from their first step to their last, over
several steps on the store's thread: an export so that no other process (a daemon left
running) writes while it reads, which also makes it one consistent view; an import so
that the whole move is one transaction, gone after a crash.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from itertools import groupby

from ...errors import StoreError
from ..records import AttemptRow, Checkpoint, PoisonEvent, storable_trace_context
from ..transfer import (
    DeliveryDump,
    EventDump,
    Sorted,
    led_by_replicas,
    not_empty,
    open_delivery,
)
from .ops import checkpoints, dt, dt_required, ts

TABLES = ("events", "deliveries", "checkpoints", "attempts", "poison")


def begin(db: sqlite3.Connection, path: str) -> None:
    """Takes the write lock, waiting as long as the busy timeout for a writer to finish."""
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        busy = (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_BUSY
        if busy:
            raise StoreError(
                f"{path} stays locked by another process: stop the daemon that uses it first"
            ) from exc
        raise


def end(db: sqlite3.Connection, commit: bool) -> None:
    if db.in_transaction:
        db.execute("COMMIT" if commit else "ROLLBACK")


def read_checkpoints(db: sqlite3.Connection) -> list[Checkpoint]:
    return sorted(checkpoints(db), key=lambda c: c.trigger)


def events_after(db: sqlite3.Connection, after: int, limit: int) -> tuple[list[EventDump], int]:
    rows = db.execute(
        "SELECT seq, trigger, event_id, record_id, change, occurred_at, body, created_at,"
        " trace_context FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
        (after, limit),
    ).fetchall()
    events = [
        EventDump(
            seq=r[0],
            trigger=r[1],
            event_id=r[2],
            record_id=r[3],
            change=r[4],
            occurred_at=dt_required(r[5]),
            body=bytes(r[6]),
            created_at=dt_required(r[7]),
            trace_context=r[8],
        )
        for r in rows
    ]
    return events, events[-1].seq if events else after


def deliveries_after(
    db: sqlite3.Connection, after: int, limit: int
) -> tuple[list[DeliveryDump], int]:
    rows = db.execute(
        "SELECT id, event_seq, endpoint, order_key, status, attempts, next_attempt_at,"
        " last_status, last_error, created_at, retry_since, finished_at"
        " FROM deliveries WHERE id > ? ORDER BY id LIMIT ?",
        (after, limit),
    ).fetchall()
    if not rows:
        return [], after
    history = _attempts(db, rows[0][0], rows[-1][0])
    found = []
    for r in rows:
        status, due, was_in_flight = open_delivery(r[4], dt(r[6]))
        found.append(
            DeliveryDump(
                id=r[0],
                event_seq=r[1],
                endpoint=r[2],
                order_key=r[3],
                status=status,
                attempts=r[5],
                next_attempt_at=due,
                last_status=r[7],
                last_error=r[8],
                created_at=dt_required(r[9]),
                retry_since=dt_required(r[10]),
                finished_at=dt(r[11]),
                history=history.get(r[0], ()),
                was_in_flight=was_in_flight,
            )
        )
    return found, rows[-1][0]


def _attempts(db: sqlite3.Connection, first: int, last: int) -> dict[int, tuple[AttemptRow, ...]]:
    rows = db.execute(
        "SELECT delivery_id, at, duration_ms, status, error, answer, next_attempt_at"
        " FROM attempts WHERE delivery_id BETWEEN ? AND ? ORDER BY delivery_id, id",
        (first, last),
    ).fetchall()
    return {
        delivery_id: tuple(
            AttemptRow(
                at=dt_required(a[1]),
                duration_ms=a[2],
                status=a[3],
                error=a[4],
                answer=a[5],
                next_attempt_at=dt(a[6]),
            )
            for a in attempts
        )
        for delivery_id, attempts in groupby(rows, key=lambda a: int(a[0]))
    }


def poison_after(db: sqlite3.Connection, after: int, limit: int) -> tuple[list[PoisonEvent], int]:
    rows = db.execute(
        "SELECT id, trigger, reason, message, received_at FROM poison"
        " WHERE id > ? ORDER BY id LIMIT ?",
        (after, limit),
    ).fetchall()
    poison = [
        PoisonEvent(trigger=r[1], reason=r[2], message=r[3], received_at=dt_required(r[4]))
        for r in rows
    ]
    return poison, rows[-1][0] if rows else after


def begin_import(db: sqlite3.Connection, path: str, now: datetime) -> None:
    """The import's transaction, refused unless every table is empty and no replica leads a
    trigger on the file (`led_by_replicas`); the write lock keeps one from taking a lease
    until the commit."""
    begin(db, path)
    try:
        rows = sum(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES)
        if rows:
            raise not_empty(f"sqlite store {path}", rows)
        led = db.execute(
            "SELECT count(*) FROM trigger_leases WHERE expires_at > ?", (ts(now),)
        ).fetchone()[0]
        if led:
            raise led_by_replicas(f"sqlite store {path}", led)
        # Leases left by stopped replicas: whoever starts next takes them under a new epoch.
        db.execute("UPDATE trigger_leases SET epoch = epoch + 1")
    except BaseException:
        end(db, commit=False)
        raise


def write(db: sqlite3.Connection, batch: Sorted, now: datetime) -> None:
    """One batch, inside the import's transaction."""
    db.executemany(
        "INSERT INTO checkpoints (trigger, position, event_time, updated_at) VALUES (?, ?, ?, ?)",
        [
            (
                c.trigger,
                json.dumps(c.position),
                ts(c.event_time) if c.event_time else None,
                ts(c.updated_at or now),
            )
            for c in batch.checkpoints
        ],
    )
    db.executemany(
        "INSERT INTO events (seq, trigger, event_id, record_id, change, occurred_at, body,"
        " created_at, trace_context) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                e.seq,
                e.trigger,
                e.event_id,
                e.record_id,
                e.change,
                ts(e.occurred_at),
                e.body,
                ts(e.created_at),
                storable_trace_context(e.trace_context),
            )
            for e in batch.events
        ],
    )
    _write_deliveries(db, batch, now)
    db.executemany(
        "INSERT INTO poison (trigger, reason, message, received_at) VALUES (?, ?, ?, ?)",
        [(p.trigger, p.reason, p.message, ts(p.received_at or now)) for p in batch.poison],
    )


def _write_deliveries(db: sqlite3.Connection, batch: Sorted, now: datetime) -> None:
    rows: list[Sequence[object]] = []
    for d in batch.deliveries:
        finished = d.status in ("delivered", "dead")
        due = None if finished else ts(d.next_attempt_at or now)
        rows.append(
            (
                d.id,
                d.event_seq,
                d.endpoint,
                d.order_key,
                "pending" if d.status == "in_flight" else d.status,
                d.attempts,
                due,
                d.last_status,
                d.last_error,
                ts(d.created_at),
                ts(d.retry_since),
                ts(d.finished_at or now) if finished else None,
            )
        )
    db.executemany(
        "INSERT INTO deliveries (id, event_seq, endpoint, order_key, status, attempts,"
        " next_attempt_at, last_status, last_error, created_at, retry_since, finished_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    db.executemany(
        "INSERT INTO attempts (delivery_id, at, duration_ms, status, error, answer,"
        " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                d.id,
                ts(a.at),
                a.duration_ms,
                a.status,
                a.error,
                a.answer,
                ts(a.next_attempt_at) if a.next_attempt_at else None,
            )
            for d in batch.deliveries
            for a in d.history
        ],
    )
