"""Claims on PostgreSQL: leasing due deliveries to one replica at a time, and giving them back.

Several replicas claim from one outbox. `FOR UPDATE SKIP LOCKED` lets each take rows the
others are not taking at that moment without waiting on them; the lease token written with
the claim is what its outcome must show (`outcomes`), so a claim whose lease ran out and was
taken over records nothing. Per-record order is checked by the query (a change is due only
while no older change of its record is open and none is in flight under a live lease) and
enforced by the partial unique index `deliveries_one_in_flight_per_record`: two replicas
that each saw the record free in their own snapshot cannot both commit a claim of it; the
loser retries and sees the winner's claim.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import AsyncConnection

from ..records import Claim
from .notify import CHANNEL

# How often a claim that lost a race for a record (unique violation) is tried again.
CLAIM_ATTEMPTS = 3

# The oldest due deliveries not held back by their record, locked: pending ones come due,
# and in-flight ones whose lease ran out (their replica died or gave up), due again. A
# change is held back by an older open change of its record, or one in flight under a live
# lease; a lapsed lease holds nothing back.
#
# The shape keeps the plan an index walk whatever the table's statistics say (right after a
# bulk ingest they say "nearly empty"): the outer query names `status IN (...)`, the
# predicate of `deliveries_claim`, whose order is its ORDER BY, so it reads that index from
# the front and stops at the LIMIT; the per-record check names `finished_at IS NULL`, which
# of the indexes on `endpoint` only `deliveries_order` serves, probed on (endpoint,
# order_key); and behind the OR the check stays a probe per row read, never a join over
# every open delivery.
_DUE = """
    SELECT d.id, d.order_key FROM deliveries d
    WHERE d.endpoint = %(endpoint)s AND d.status IN ('pending', 'in_flight')
      AND d.next_attempt_at <= sftriggerd_now()
      AND (d.order_key IS NULL OR NOT EXISTS (
          SELECT 1 FROM deliveries other
          WHERE other.endpoint = d.endpoint AND other.order_key = d.order_key
            AND other.finished_at IS NULL
            AND (other.id < d.id
                 OR (other.status = 'in_flight' AND other.next_attempt_at > sftriggerd_now()))))
    ORDER BY d.id
    LIMIT %(limit)s
    FOR UPDATE OF d SKIP LOCKED
"""
# Lapsed leases of the records about to be claimed, other than the rows claimed: back to
# pending (their claimer lost them, as if taken over), so that a record keeps one delivery
# in flight, which the unique index demands.
_LAPSED_OF_RECORDS = """
    UPDATE deliveries SET status = 'pending', lease_token = NULL
    WHERE id IN (
        SELECT id FROM deliveries
        WHERE endpoint = %(endpoint)s AND order_key = ANY(%(keys)s)
          AND status = 'in_flight' AND next_attempt_at <= sftriggerd_now()
          AND id <> ALL(%(ids)s)
        FOR UPDATE SKIP LOCKED)
"""
_LEASE = """
    UPDATE deliveries d
    SET status = 'in_flight', lease_token = %(token)s,
        next_attempt_at = sftriggerd_now() + %(lease)s
    FROM events e
    WHERE d.id = ANY(%(ids)s) AND e.seq = d.event_seq
    RETURNING d.id, d.endpoint, e.trigger, e.event_id, e.body, d.attempts, d.retry_since,
              e.occurred_at, d.next_attempt_at, e.trace_context
"""
_RELEASE = f"""
    WITH released AS (
        UPDATE deliveries d
        SET status = 'pending', next_attempt_at = sftriggerd_now(), lease_token = NULL
        FROM unnest(%s::bigint[], %s::text[]) AS v(id, token)
        WHERE d.id = v.id AND d.lease_token = v.token AND d.status = 'in_flight'
        RETURNING d.endpoint)
    SELECT pg_notify('{CHANNEL}', endpoint) FROM (SELECT DISTINCT endpoint FROM released) r
"""


async def claim_due(
    conn: AsyncConnection[Any], endpoint: str, limit: int, lease: timedelta
) -> list[Claim]:
    token = uuid.uuid4().hex
    for attempt in range(CLAIM_ATTEMPTS):
        try:
            async with conn.transaction():
                rows = await _lease_due(conn, endpoint, limit, lease, token)
        except psycopg.errors.UniqueViolation:
            # Another replica claimed a change of one of these records first; its claim is
            # committed now, so the next try sees that record in flight and passes it by.
            if attempt == CLAIM_ATTEMPTS - 1:
                raise
            continue
        return sorted((_claim(row, token) for row in rows), key=lambda c: c.delivery_id)
    return []


async def _lease_due(
    conn: AsyncConnection[Any], endpoint: str, limit: int, lease: timedelta, token: str
) -> list[tuple[Any, ...]]:
    """Inside the caller's transaction: three statements, in this order, so the unique
    index never sees two in-flight changes of one record."""
    cursor = await conn.execute(_DUE, {"endpoint": endpoint, "limit": limit})
    due = await cursor.fetchall()
    if not due:
        return []
    ids = [row[0] for row in due]
    keys = sorted({row[1] for row in due if row[1] is not None})
    if keys:
        await conn.execute(_LAPSED_OF_RECORDS, {"endpoint": endpoint, "keys": keys, "ids": ids})
    leased = await conn.execute(_LEASE, {"ids": ids, "token": token, "lease": lease})
    return await leased.fetchall()


def _claim(row: tuple[Any, ...], token: str) -> Claim:
    return Claim(
        delivery_id=row[0],
        endpoint=row[1],
        trigger=row[2],
        event_id=row[3],
        body=bytes(row[4]),
        attempts=row[5],
        retry_since=row[6],
        occurred_at=row[7],
        lease_token=token,
        lease_until=row[8],
        trace_context=row[9],
    )


async def release(conn: AsyncConnection[Any], claims: Sequence[Claim]) -> None:
    """Gives the claims still held back as due now (no attempt counted), and wakes the
    replicas of their endpoints."""
    async with conn.transaction():
        await conn.execute(
            _RELEASE, ([c.delivery_id for c in claims], [c.lease_token for c in claims])
        )
