"""The SQLite engine's SQL: synchronous functions of one connection, run on the store's
thread. Each public function is one transaction."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

from ...errors import StoreError
from ..records import (
    Checkpoint,
    Claim,
    Dead,
    Delivered,
    DeliveryRow,
    DeliveryStatus,
    IngestResult,
    NewEvent,
    OutboxCounts,
    Outcome,
    PoisonEvent,
    RecordState,
    Retry,
    body_record,
    delivery_row,
    storable_trace_context,
)
from . import attempts
from .migrations import MIGRATIONS

# Every commit fsyncs the write-ahead log, so what it wrote survives a power loss.
DURABLE_SYNCHRONOUS = "FULL"


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE takes the write lock up front, so a transaction never fails half-way
    on a lock upgrade."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def ts(value: datetime) -> float:
    return value.timestamp()


def dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def dt_required(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def migrate(db: sqlite3.Connection, create: bool = True) -> int:
    """Brings the schema to the current version, one transaction per version.

    Each step reads the version under the write lock (BEGIN IMMEDIATE), so two processes
    opening one new file at once migrate it once: the second waits, then finds it done. A
    schema newer than this code knows is refused rather than written to by older SQL.

    Foreign keys are off while migrating (SQLite's own procedure for rebuilding a table):
    dropping a table that others reference would otherwise delete what references it. Each
    step checks them before it commits instead."""
    supported = len(MIGRATIONS)
    # A no-op inside a transaction: set between them.
    db.execute("PRAGMA foreign_keys=OFF")
    try:
        while True:
            with transaction(db):
                db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                current = schema_version(db)
                if current > supported:
                    raise StoreError(
                        f"store schema {current} is newer than this sftriggerd supports"
                        f" ({supported}); upgrade sftriggerd"
                    )
                if current == 0 and not create:
                    raise StoreError("the file holds no sftriggerd store")
                if current == supported:
                    return supported
                for statement in _statements(MIGRATIONS[current]):
                    db.execute(statement)
                if db.execute("PRAGMA foreign_key_check").fetchone() is not None:
                    raise StoreError(f"schema step {current + 1} would break a foreign key")
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (current + 1,))
    finally:
        db.execute("PRAGMA foreign_keys=ON")


def supported_version() -> int:
    """The version `migrate` brings a file to."""
    return len(MIGRATIONS)


def check_schema(db: sqlite3.Connection) -> int:
    """The schema version as found, for an open that must not migrate: refused as `migrate`
    refuses it when it is newer than this code knows or missing, left as it is when older."""
    # Reads only, no write lock: a running daemon's writes go on meanwhile.
    made = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    current = schema_version(db) if made else 0
    supported = supported_version()
    if current > supported:
        raise StoreError(
            f"store schema {current} is newer than this sftriggerd supports"
            f" ({supported}); upgrade sftriggerd"
        )
    if current == 0:
        raise StoreError("the file holds no sftriggerd store")
    return current


def _statements(script: str) -> list[str]:
    # executescript() would commit on its own; splitting keeps each migration one transaction.
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return statements


def schema_version(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def ingest(
    db: sqlite3.Connection,
    trigger: str,
    events: Sequence[NewEvent],
    checkpoint: Checkpoint | None,
    now: datetime,
    poison: Sequence[PoisonEvent] = (),
    fence_check: Callable[[sqlite3.Connection], None] | None = None,
) -> IngestResult:
    new = duplicates = deliveries = 0
    with transaction(db):
        if fence_check is not None:  # first, so a lost lease writes nothing
            fence_check(db)
        _insert_poison(db, poison, now)
        for event in events:
            cursor = db.execute(
                "INSERT INTO events (trigger, event_id, record_id, change, occurred_at, body,"
                " created_at, trace_context) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (trigger, event_id) DO NOTHING",
                (
                    trigger,
                    event.event_id,
                    event.record_id,
                    event.change,
                    ts(event.occurred_at),
                    event.body,
                    ts(now),
                    storable_trace_context(event.trace_context),
                ),
            )
            if cursor.rowcount == 0:
                duplicates += 1
                continue
            new += 1
            deliveries += _insert_deliveries(db, cursor.lastrowid, event, now)
        if checkpoint is not None:
            _save_checkpoint(db, checkpoint, now)
    return IngestResult(new_events=new, duplicate_events=duplicates, deliveries=deliveries)


def _insert_deliveries(
    db: sqlite3.Connection, event_seq: int | None, event: NewEvent, now: datetime
) -> int:
    rows = [
        (
            event_seq,
            endpoint,
            event.order_key if endpoint in event.ordered_endpoints else None,
            ts(now),
            ts(now),
            ts(now),
        )
        for endpoint in event.endpoints
    ]
    db.executemany(
        "INSERT INTO deliveries (event_seq, endpoint, order_key, status, next_attempt_at,"
        " created_at, retry_since) VALUES (?, ?, ?, 'pending', ?, ?, ?)",
        rows,
    )
    return len(rows)


def _insert_poison(db: sqlite3.Connection, poison: Sequence[PoisonEvent], now: datetime) -> None:
    db.executemany(
        "INSERT INTO poison (trigger, reason, message, received_at) VALUES (?, ?, ?, ?)",
        [(item.trigger, item.reason, item.message, ts(item.received_at or now)) for item in poison],
    )


def list_poison(db: sqlite3.Connection, trigger: str | None, limit: int) -> list[PoisonEvent]:
    sql = "SELECT trigger, reason, message, received_at FROM poison"
    params: tuple[object, ...] = (limit,)
    if trigger is not None:
        sql += " WHERE trigger = ?"
        params = (trigger, limit)
    rows = db.execute(sql + " ORDER BY id DESC LIMIT ?", params).fetchall()
    return [
        PoisonEvent(trigger=r[0], reason=r[1], message=r[2], received_at=dt_required(r[3]))
        for r in rows
    ]


def _save_checkpoint(db: sqlite3.Connection, checkpoint: Checkpoint, now: datetime) -> None:
    event_time = ts(checkpoint.event_time) if checkpoint.event_time else None
    db.execute(
        "INSERT INTO checkpoints (trigger, position, event_time, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (trigger) DO UPDATE SET position = excluded.position,"
        " event_time = coalesce(excluded.event_time, checkpoints.event_time),"
        " updated_at = excluded.updated_at",
        (checkpoint.trigger, json.dumps(checkpoint.position), event_time, ts(now)),
    )


def checkpoints(db: sqlite3.Connection, trigger: str | None = None) -> list[Checkpoint]:
    sql = "SELECT trigger, position, event_time, updated_at FROM checkpoints"
    rows = (
        db.execute(sql + " WHERE trigger = ?", (trigger,)) if trigger else db.execute(sql)
    ).fetchall()
    return [
        Checkpoint(
            trigger=r[0], position=json.loads(r[1]), event_time=dt(r[2]), updated_at=dt(r[3])
        )
        for r in rows
    ]


def record_outcomes(
    db: sqlite3.Connection, items: Sequence[tuple[Claim, Outcome]], now: datetime
) -> list[bool]:
    """Many outcomes in one transaction: the group commit that keeps delivery fast. Each
    recorded one adds its row to the attempt history, in the same transaction. `now` is
    the store's clock: when finished ones finished, and what a retry's delay counts from."""
    results: list[bool] = []
    with transaction(db):
        for claim, outcome in items:
            status, next_at, last_status, error, finished = _outcome_columns(outcome, now)
            cursor = db.execute(
                "UPDATE deliveries SET status = ?, attempts = attempts + 1, next_attempt_at = ?,"
                " last_status = ?, last_error = ?, finished_at = ?, lease_token = NULL"
                " WHERE id = ? AND lease_token = ? AND status = 'in_flight'",
                (
                    status,
                    next_at,
                    last_status,
                    error,
                    finished,
                    claim.delivery_id,
                    claim.lease_token,
                ),
            )
            results.append(cursor.rowcount == 1)
        attempts.insert_attempts(
            db,
            [
                attempts.attempt_values(claim, outcome, now)
                for (claim, outcome), recorded in zip(items, results, strict=True)
                if recorded
            ],
        )
    return results


def _outcome_columns(
    outcome: Outcome, now: datetime
) -> tuple[str, float | None, int | None, str | None, float | None]:
    if isinstance(outcome, Delivered):
        return "delivered", None, outcome.status, None, ts(now)
    if isinstance(outcome, Retry):
        return "pending", ts(now + outcome.delay), outcome.status, outcome.error, None
    assert isinstance(outcome, Dead)
    return "dead", None, outcome.status, outcome.error, ts(now)


def next_due_at(db: sqlite3.Connection, endpoint: str) -> datetime | None:
    row = db.execute(
        "SELECT min(next_attempt_at) FROM deliveries"
        " WHERE endpoint = ? AND status IN ('pending', 'in_flight') AND finished_at IS NULL",
        (endpoint,),
    ).fetchone()
    return dt(row[0])


def get_delivery(db: sqlite3.Connection, delivery_id: int) -> DeliveryRow | None:
    rows = _select_deliveries(db, "WHERE d.id = ?", [delivery_id], 1)
    return rows[0] if rows else None


def list_deliveries(
    db: sqlite3.Connection, status: DeliveryStatus | None, endpoint: str | None, limit: int
) -> list[DeliveryRow]:
    clauses: list[str] = []
    params: list[object] = []
    if status is not None:
        clauses.append("d.status = ?")
        params.append(status)
    if endpoint is not None:
        clauses.append("d.endpoint = ?")
        params.append(endpoint)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    return _select_deliveries(db, where, params, limit)


def deliveries_query(where: str) -> str:
    """The newest deliveries matching `where`, with their events; the last parameter is
    the limit."""
    return (
        "SELECT d.id, e.event_id, d.endpoint, e.trigger, d.status, d.attempts,"
        " d.next_attempt_at, d.last_status, d.last_error, d.created_at"
        f" FROM deliveries d JOIN events e ON e.seq = d.event_seq {where}"
        " ORDER BY d.id DESC LIMIT ?"
    )


def _select_deliveries(
    db: sqlite3.Connection, where: str, params: list[object], limit: int
) -> list[DeliveryRow]:
    rows = db.execute(deliveries_query(where), (*params, limit)).fetchall()
    return [delivery_row(r, dt) for r in rows]


_REDRIVE = (
    "UPDATE deliveries SET status = 'pending', next_attempt_at = ?, retry_since = ?,"
    " attempts = 0, finished_at = NULL WHERE status = 'dead'"
)


def redrive(db: sqlite3.Connection, delivery_id: int, now: datetime) -> bool:
    with transaction(db):
        cursor = db.execute(_REDRIVE + " AND id = ?", (ts(now), ts(now), delivery_id))
    return cursor.rowcount == 1


def redrive_endpoint(db: sqlite3.Connection, endpoint: str, now: datetime) -> int:
    with transaction(db):
        cursor = db.execute(_REDRIVE + " AND endpoint = ?", (ts(now), ts(now), endpoint))
    return cursor.rowcount


_OPEN_COUNTS = (
    "SELECT endpoint, count(*) FROM deliveries WHERE finished_at IS NULL GROUP BY endpoint"
)
_DEAD_COUNTS = "SELECT endpoint, count(*) FROM deliveries WHERE status = 'dead' GROUP BY endpoint"


def outbox_counts(db: sqlite3.Connection) -> dict[str, OutboxCounts]:
    # Two reads of partial indexes (open rows, dead rows): delivered history is never read.
    pending: dict[str, int] = dict(db.execute(_OPEN_COUNTS).fetchall())
    dead: dict[str, int] = dict(db.execute(_DEAD_COUNTS).fetchall())
    return {
        endpoint: OutboxCounts(pending=pending.get(endpoint, 0), dead=dead.get(endpoint, 0))
        for endpoint in pending.keys() | dead.keys()
    }


def last_changes(
    db: sqlite3.Connection, trigger: str, record_ids: Sequence[str]
) -> dict[str, RecordState]:
    found: dict[str, RecordState] = {}
    for record_id in record_ids:
        row = db.execute(
            "SELECT change, occurred_at, body FROM events WHERE trigger = ? AND record_id = ?"
            " ORDER BY seq DESC LIMIT 1",
            (trigger, record_id),
        ).fetchone()
        if row is not None:
            found[record_id] = RecordState(
                change=row[0], occurred_at=dt_required(row[1]), record=body_record(row[2])
            )
    return found
