"""The SQLite engine's leases: claiming due deliveries, and giving claims back.

Three things keep a claim cheap when the backlog is long: it reads only the oldest due
deliveries, in id order from an index of pending ones, instead of sorting all of them;
the per-record ordering check runs for those alone, in one query, unless most of them are
held back; and a claim commits without an fsync of its own (`lease_transaction`).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from ..records import Claim
from .ops import DURABLE_SYNCHRONOUS, dt_required, transaction, ts

# Ids bound in one `IN (...)`: under the 999 parameters an older SQLite allows.
IDS_PER_QUERY = 500

# The oldest due pending deliveries, read in id order from the pending queue's index until
# LIMIT rows are found. Named explicitly: without statistics SQLite would pick the
# (endpoint, status, next_attempt_at) index and sort every due row of a long backlog.
_OLDEST_PENDING = """
    SELECT id, order_key FROM deliveries INDEXED BY deliveries_pending
    WHERE endpoint = ? AND status = 'pending' AND next_attempt_at <= ?
    ORDER BY id LIMIT ?
"""
# In-flight deliveries whose lease ran out (their process died or gave up): due again.
_LAPSED_LEASES = """
    SELECT id, order_key FROM deliveries
    WHERE endpoint = ? AND status = 'in_flight' AND next_attempt_at <= ? AND finished_at IS NULL
    ORDER BY id LIMIT ?
"""
# Records with a delivery in flight under a live lease. Read from the open-deliveries index
# by (endpoint, status, lease end): as many rows as deliveries are in flight, a few hundred
# at most, however long the backlog.
_RECORDS_IN_FLIGHT = """
    SELECT order_key FROM deliveries
    WHERE endpoint = :endpoint AND status = 'in_flight' AND next_attempt_at > :now
      AND finished_at IS NULL AND order_key IS NOT NULL
"""
# Due pending deliveries after a given id that no older unfinished change of their record
# holds back, nor any change of it in flight: the check runs for every due row, which only
# pays when most are held back.
_CLAIMABLE_AFTER = f"""
    SELECT d.id FROM deliveries d INDEXED BY deliveries_pending
    WHERE d.endpoint = :endpoint AND d.status = 'pending'
      AND d.next_attempt_at <= :now AND d.id > :after
      AND (d.order_key IS NULL OR (NOT EXISTS (
          SELECT 1 FROM deliveries older
          WHERE older.endpoint = d.endpoint AND older.order_key = d.order_key
            AND older.id < d.id AND older.finished_at IS NULL)
        AND d.order_key NOT IN ({_RECORDS_IN_FLIGHT})))
    ORDER BY d.id LIMIT :limit
"""
_CLAIMED = """
    SELECT d.id, d.endpoint, e.trigger, e.event_id, e.body, d.attempts, d.retry_since,
           e.occurred_at, e.trace_context
    FROM deliveries d JOIN events e ON e.seq = d.event_seq
    WHERE d.id IN ({ids}) ORDER BY d.id
"""


@contextmanager
def lease_transaction(db: sqlite3.Connection) -> Iterator[None]:
    """A transaction that only takes or gives back leases, committed without its own fsync.

    Forgetting one after a power loss is harmless: a lost claim leaves its deliveries
    pending, so they are sent again (at-least-once, with the stable webhook-id), exactly as
    after a lost outcome; a lost release lets the lease run out. The write-ahead log is
    append-only and each fsync covers all of it, so the next durable commit (ingest,
    outcome) makes the lease durable too, and no durable commit is ever lost with it.
    """
    db.execute("PRAGMA synchronous=NORMAL")
    try:
        with transaction(db):
            yield
    finally:
        db.execute(f"PRAGMA synchronous={DURABLE_SYNCHRONOUS}")


def claimable_ids(db: sqlite3.Connection, endpoint: str, limit: int, now: datetime) -> list[int]:
    """Up to `limit` due deliveries, oldest first, that no older unfinished change of their
    record holds back (per-record ordering).

    The `limit` oldest due deliveries are checked against their records first, in one
    query; only when some of them are held back does SQLite look further, checking every
    later due delivery itself."""
    at = ts(now)
    oldest_due: list[tuple[int, str | None]] = sorted(
        db.execute(_OLDEST_PENDING, (endpoint, at, limit)).fetchall()
        + db.execute(_LAPSED_LEASES, (endpoint, at, limit)).fetchall()
    )[:limit]
    ids = _not_held_back(db, endpoint, oldest_due, at)
    if len(oldest_due) == limit and len(ids) < limit:
        after = {"endpoint": endpoint, "now": at, "after": oldest_due[-1][0]}
        ids += [
            row[0] for row in db.execute(_CLAIMABLE_AFTER, {**after, "limit": limit - len(ids)})
        ]
    return ids


def _not_held_back(
    db: sqlite3.Connection, endpoint: str, due: list[tuple[int, str | None]], at: float
) -> list[int]:
    """Of these due deliveries (oldest first), those whose record has no older unfinished
    change (not an earlier one of these, and none not due yet or in flight) and no change in
    flight at all: a redriven old change is the oldest open one of its record, but must
    still wait for a newer one that is being sent, so that one record never has two
    deliveries in flight at once."""
    in_flight = {
        row[0] for row in db.execute(_RECORDS_IN_FLIGHT, {"endpoint": endpoint, "now": at})
    }
    records: set[str] = set(in_flight)
    candidates: list[tuple[int, str | None]] = []
    for delivery_id, key in due:
        if key in records:
            continue
        if key is not None:
            records.add(key)
        candidates.append((delivery_id, key))
    oldest = _oldest_unfinished(db, endpoint, [key for _, key in candidates if key is not None])
    return [
        delivery_id for delivery_id, key in candidates if key is None or oldest[key] == delivery_id
    ]


def _oldest_unfinished(db: sqlite3.Connection, endpoint: str, keys: list[str]) -> dict[str, int]:
    """Per order key, the id of its oldest pending or in-flight delivery (due or not)."""
    oldest: dict[str, int] = {}
    for start in range(0, len(keys), IDS_PER_QUERY):
        chunk = keys[start : start + IDS_PER_QUERY]
        # One index seek per key (min() of a subquery), where GROUP BY would read every
        # open change of the record: many, when a record changes often during a backlog.
        oldest.update(
            db.execute(
                "SELECT keys.column1, (SELECT min(id) FROM deliveries WHERE endpoint = ?"
                " AND order_key = keys.column1 AND finished_at IS NULL)"
                f" FROM (VALUES {','.join(['(?)'] * len(chunk))}) AS keys",
                (endpoint, *chunk),
            )
        )
    return oldest


def claim_due(
    db: sqlite3.Connection, endpoint: str, limit: int, lease: timedelta, now: datetime
) -> list[Claim]:
    token = uuid.uuid4().hex
    lease_until = now + lease
    with lease_transaction(db):
        ids = claimable_ids(db, endpoint, limit, now)
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(ids), IDS_PER_QUERY):
            chunk = ids[start : start + IDS_PER_QUERY]
            marks = ",".join("?" * len(chunk))
            db.execute(
                "UPDATE deliveries SET status = 'in_flight', next_attempt_at = ?, lease_token = ?"
                f" WHERE id IN ({marks})",
                (ts(lease_until), token, *chunk),
            )
            rows += db.execute(_CLAIMED.format(ids=marks), chunk).fetchall()
    return [
        Claim(
            delivery_id=r[0],
            endpoint=r[1],
            trigger=r[2],
            event_id=r[3],
            body=bytes(r[4]),
            attempts=r[5],
            retry_since=dt_required(r[6]),
            occurred_at=dt_required(r[7]),
            lease_token=token,
            lease_until=lease_until,
            trace_context=r[8],
        )
        for r in rows
    ]


def release(db: sqlite3.Connection, claims: Sequence[Claim], now: datetime) -> None:
    with lease_transaction(db):
        db.executemany(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = ?, lease_token = NULL"
            " WHERE id = ? AND lease_token = ? AND status = 'in_flight'",
            [(ts(now), c.delivery_id, c.lease_token) for c in claims],
        )
