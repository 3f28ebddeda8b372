"""The SQLite engine's attempt history: one row per attempt, written with its outcome.

The rows go in with the outcomes' own transaction (`ops.record_outcomes`), one
`executemany` per batch, so the history never disagrees with the delivery it belongs to and
costs no commit of its own. They leave with their delivery (`prune`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime

from ..records import (
    AttemptRow,
    Claim,
    Dead,
    Delivered,
    DeliveryDetail,
    DeliveryRow,
    Outcome,
    Retry,
)

_INSERT = (
    "INSERT INTO attempts (delivery_id, at, duration_ms, status, error, answer, next_attempt_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
AttemptValues = tuple[int, float, int | None, int | None, str | None, str | None, float | None]


def attempt_values(claim: Claim, outcome: Outcome, now: datetime) -> AttemptValues:
    """The row of one recorded attempt, `now` being the store's clock as it records it. An
    outcome without a trace (written by hand, not by a sender) still leaves a row: its time
    is `now`."""
    trace = outcome.trace
    next_at: datetime | None = None
    error: str | None = None
    if isinstance(outcome, Retry):
        next_at, error = now + outcome.delay, outcome.error
    elif isinstance(outcome, Dead):
        error = outcome.error
    else:
        assert isinstance(outcome, Delivered)
    at = trace.started_at if trace else now
    return (
        claim.delivery_id,
        at.timestamp(),
        trace.duration_ms if trace else None,
        outcome.status,
        error,
        trace.answer if trace else None,
        next_at.timestamp() if next_at else None,
    )


def insert_attempts(db: sqlite3.Connection, rows: Sequence[AttemptValues]) -> None:
    """Inside the caller's transaction."""
    if rows:
        db.executemany(_INSERT, rows)


def delivery_detail(db: sqlite3.Connection, row: DeliveryRow) -> DeliveryDetail | None:
    """The event body and the attempts of a delivery read just before (one read transaction
    is not needed: a delivery's body never changes, and attempts are only ever added)."""
    found = db.execute(
        "SELECT e.body FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.id = ?",
        (row.id,),
    ).fetchone()
    if found is None:
        return None  # pruned in between
    attempts = db.execute(
        "SELECT at, duration_ms, status, error, answer, next_attempt_at FROM attempts"
        " WHERE delivery_id = ? ORDER BY id",
        (row.id,),
    ).fetchall()
    return DeliveryDetail(
        delivery=row,
        body=bytes(found[0]),
        attempts=tuple(
            AttemptRow(
                at=_time(a[0]),
                duration_ms=a[1],
                status=a[2],
                error=a[3],
                answer=a[4],
                next_attempt_at=None if a[5] is None else _time(a[5]),
            )
            for a in attempts
        ),
    )


def _time(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)
