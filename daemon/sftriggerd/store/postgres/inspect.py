"""Reads on PostgreSQL: checkpoints, poison, deliveries and their history, counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, LiteralString

from psycopg import AsyncConnection

from ..records import (
    AttemptRow,
    Checkpoint,
    DeliveryDetail,
    DeliveryRow,
    DeliveryStatus,
    OutboxCounts,
    PoisonEvent,
    RecordState,
    body_record,
    delivery_row,
)
from .text import optional_readable, readable

_DELIVERIES = """
    SELECT d.id, e.event_id, d.endpoint, e.trigger, d.status, d.attempts,
           d.next_attempt_at, d.last_status, d.last_error, d.created_at
    FROM deliveries d JOIN events e ON e.seq = d.event_seq
    WHERE (%(id)s::bigint IS NULL OR d.id = %(id)s)
      AND (%(status)s::text IS NULL OR d.status = %(status)s)
      AND (%(endpoint)s::text IS NULL OR d.endpoint = %(endpoint)s)
    ORDER BY d.id DESC LIMIT %(limit)s
"""
# Two reads of partial indexes (open rows, dead rows): delivered history is never read.
_OPEN_COUNTS = (
    "SELECT endpoint, count(*) FROM deliveries WHERE finished_at IS NULL GROUP BY endpoint"
)
_DEAD_COUNTS = "SELECT endpoint, count(*) FROM deliveries WHERE status = 'dead' GROUP BY endpoint"
# The newest stored event per record: one index seek each (events_record).
_LAST_CHANGES = """
    SELECT r.record_id, last.change, last.occurred_at, last.body
    FROM unnest(%s::text[]) AS r(record_id)
    CROSS JOIN LATERAL (
        SELECT change, occurred_at, body FROM events
        WHERE trigger = %s AND record_id = r.record_id ORDER BY seq DESC LIMIT 1) AS last
"""


async def list_poison(
    conn: AsyncConnection[Any], trigger: str | None, limit: int
) -> list[PoisonEvent]:
    cursor = await conn.execute(
        "SELECT trigger, reason, message, received_at FROM poison"
        " WHERE %s::text IS NULL OR trigger = %s ORDER BY id DESC LIMIT %s",
        (optional_readable(trigger), optional_readable(trigger), limit),
    )
    return [
        PoisonEvent(trigger=r[0], reason=r[1], message=r[2], received_at=r[3])
        for r in await cursor.fetchall()
    ]


async def checkpoints(conn: AsyncConnection[Any], trigger: str | None = None) -> list[Checkpoint]:
    cursor = await conn.execute(
        "SELECT trigger, position, event_time, updated_at FROM checkpoints"
        " WHERE %s::text IS NULL OR trigger = %s ORDER BY trigger",
        (trigger, trigger),
    )
    return [
        Checkpoint(trigger=r[0], position=r[1], event_time=r[2], updated_at=r[3])
        for r in await cursor.fetchall()
    ]


async def last_changes(
    conn: AsyncConnection[Any], trigger: str, record_ids: Sequence[str]
) -> dict[str, RecordState]:
    stored = {readable(record_id): record_id for record_id in record_ids}
    cursor = await conn.execute(_LAST_CHANGES, (list(stored), readable(trigger)))
    return {
        stored[r[0]]: RecordState(change=r[1], occurred_at=r[2], record=body_record(bytes(r[3])))
        for r in await cursor.fetchall()
    }


async def next_due_in(conn: AsyncConnection[Any], endpoint: str) -> timedelta | None:
    cursor = await conn.execute(
        "SELECT min(next_attempt_at) - sftriggerd_now() FROM deliveries"
        " WHERE endpoint = %s AND status IN ('pending', 'in_flight') AND finished_at IS NULL",
        (endpoint,),
    )
    row = await cursor.fetchone()
    found: timedelta | None = row[0] if row else None
    return found


async def list_deliveries(
    conn: AsyncConnection[Any],
    status: DeliveryStatus | None = None,
    endpoint: str | None = None,
    limit: int = 100,
    delivery_id: int | None = None,
) -> list[DeliveryRow]:
    cursor = await conn.execute(
        _DELIVERIES,
        {"id": delivery_id, "status": status, "endpoint": endpoint, "limit": limit},
    )
    return [delivery_row(r, _as_time) for r in await cursor.fetchall()]


async def get_delivery(conn: AsyncConnection[Any], delivery_id: int) -> DeliveryRow | None:
    rows = await list_deliveries(conn, limit=1, delivery_id=delivery_id)
    return rows[0] if rows else None


async def get_delivery_detail(
    conn: AsyncConnection[Any], delivery_id: int
) -> DeliveryDetail | None:
    """The delivery, body and attempts read in one snapshot (REPEATABLE READ)."""
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        row = await get_delivery(conn, delivery_id)
        if row is None:
            return None
        body = await conn.execute(
            "SELECT e.body FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.id = %s",
            (delivery_id,),
        )
        found = await body.fetchone()
        attempts = await conn.execute(
            "SELECT at, duration_ms, status, error, answer, next_attempt_at FROM attempts"
            " WHERE delivery_id = %s ORDER BY id",
            (delivery_id,),
        )
        history = await attempts.fetchall()
    if found is None:
        return None
    return DeliveryDetail(
        delivery=row,
        body=bytes(found[0]),
        attempts=tuple(
            AttemptRow(
                at=a[0],
                duration_ms=a[1],
                status=a[2],
                error=a[3],
                answer=a[4],
                next_attempt_at=a[5],
            )
            for a in history
        ),
    )


async def outbox_counts(conn: AsyncConnection[Any]) -> dict[str, OutboxCounts]:
    async with conn.transaction():
        pending: dict[str, int] = {
            r[0]: int(r[1]) for r in await (await conn.execute(_OPEN_COUNTS)).fetchall()
        }
        dead: dict[str, int] = {
            r[0]: int(r[1]) for r in await (await conn.execute(_DEAD_COUNTS)).fetchall()
        }
    return {
        endpoint: OutboxCounts(pending=pending.get(endpoint, 0), dead=dead.get(endpoint, 0))
        for endpoint in pending.keys() | dead.keys()
    }


async def _counts(conn: AsyncConnection[Any], query: LiteralString) -> dict[str, int]:
    cursor = await conn.execute(query)
    return {str(r[0]): int(r[1]) for r in await cursor.fetchall()}


def _as_time(value: datetime | None) -> datetime | None:
    return value  # psycopg reads timestamptz as aware datetimes already
