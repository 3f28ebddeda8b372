"""The SQLite engine's resends, bulk redrives and rewinds.

A requeue first reads the matching rows (a plain read: in WAL mode it blocks no writer), then
updates them in chunks, each its own short transaction that checks the status again, so a
large resend never holds the write lock for long and a row that changed in between is left
as it now is. The row keeps its id, so `leases` orders it among its record's changes
exactly like a redriven one: it goes out before any newer change of its record that is still
open, and never while one is in flight.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ..records import Checkpoint
from ..replay import Selection
from .ops import transaction, ts

_CHUNK = 500

# The first stored event of a trigger whose streamed replay id lies after the given one.
# Bodies are JSON text stored as BLOB: cast, so SQLite reads them as text, not as JSONB.
_FIRST_AFTER_REPLAY = (
    "SELECT min(seq) FROM events WHERE trigger = ? AND json_valid(CAST(body AS TEXT))"
    " AND json_extract(CAST(body AS TEXT), '$.source.replay_id') > ?"
)

# The last stored event of a trigger carrying a replay id that has no order (Pub/Sub's).
_LAST_WITH_REPLAY_TOKEN = (
    "SELECT max(seq) FROM events WHERE trigger = ? AND json_valid(CAST(body AS TEXT))"
    " AND json_extract(CAST(body AS TEXT), '$.source.replay_id') = ?"
)


def _where(selection: Selection) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    for column, value in (
        ("d.id = ?", selection.delivery_id),
        ("d.endpoint = ?", selection.endpoint),
        ("e.trigger = ?", selection.trigger),
        ("d.created_at >= ?", selection.since and ts(selection.since)),
        ("d.created_at < ?", selection.until and ts(selection.until)),
        ("e.occurred_at >= ?", selection.occurred_since and ts(selection.occurred_since)),
    ):
        if value is not None:
            clauses.append(column)
            params.append(value)
    if selection.after_replay_id is not None:
        clauses.append(f"e.seq >= ({_FIRST_AFTER_REPLAY})")
        params += [selection.trigger, selection.after_replay_id]
    if selection.after_replay_token is not None:
        clauses.append(f"e.seq > ({_LAST_WITH_REPLAY_TOKEN})")
        params += [selection.trigger, selection.after_replay_token]
    return " AND ".join(clauses) or "1", params


@dataclass(frozen=True)
class Planned:
    """What a requeue will change: the wanted rows, in id order, with their endpoints."""

    wanted: list[tuple[int, str]]
    already_pending: int
    statuses: list[str]


def plan_requeue(db: sqlite3.Connection, selection: Selection) -> Planned:
    """The selected rows a requeue changes, and how many selected ones are already open."""
    if selection.by_replay and selection.trigger is None:
        raise ValueError("a selection by replay id names its trigger")
    where, params = _where(selection)
    rows: list[tuple[int, str, str]] = db.execute(
        "SELECT d.id, d.status, d.endpoint FROM deliveries d"
        f" JOIN events e ON e.seq = d.event_seq WHERE {where} ORDER BY d.id",
        params,
    ).fetchall()
    wanted = [(i, endpoint) for i, status, endpoint in rows if status in selection.statuses]
    already = sum(1 for _, status, _ in rows if status in ("pending", "in_flight"))
    return Planned(wanted, already, sorted(selection.statuses))


def chunks(planned: Planned) -> list[list[tuple[int, str]]]:
    """The wanted rows in pieces, each its own transaction and its own turn on the store's
    thread, so a large resend never holds up the rest of the daemon for long either."""
    return [planned.wanted[i : i + _CHUNK] for i in range(0, len(planned.wanted), _CHUNK)]


def requeue_chunk(
    db: sqlite3.Connection, chunk: list[tuple[int, str]], statuses: list[str], now: datetime
) -> tuple[int, set[str]]:
    """Makes the rows of `chunk` still in one of `statuses` pending and due now, with a fresh
    retry clock; how many it changed, and their endpoints."""
    changed: list[str] = []
    with transaction(db):
        for delivery_id, endpoint in chunk:
            cursor = db.execute(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = ?,"
                " retry_since = ?, attempts = 0, finished_at = NULL, lease_token = NULL"
                f" WHERE id = ? AND status IN ({','.join('?' * len(statuses))})",
                (ts(now), ts(now), delivery_id, *statuses),
            )
            if cursor.rowcount:
                changed.append(endpoint)
    return len(changed), set(changed)


def rewind(
    db: sqlite3.Connection,
    trigger: str,
    checkpoint: Checkpoint,
    now: datetime,
    fence_check: Callable[[sqlite3.Connection], None] | None = None,
) -> None:
    """Replaces the trigger's checkpoint, also when it moves back (which `ingest` never
    does): the position, and the event time exactly as given (None clears it)."""
    event_time = ts(checkpoint.event_time) if checkpoint.event_time else None
    with transaction(db):
        if fence_check is not None:
            fence_check(db)
        db.execute(
            "INSERT INTO checkpoints (trigger, position, event_time, updated_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (trigger) DO UPDATE SET"
            " position = excluded.position, event_time = excluded.event_time,"
            " updated_at = excluded.updated_at",
            (trigger, json.dumps(checkpoint.position), event_time, ts(now)),
        )
