"""Ingest on PostgreSQL: events, their deliveries, poison and the checkpoint in one
transaction, and the wake-up for other replicas sent by that same commit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from ..leadership import Fence
from ..records import Checkpoint, IngestResult, NewEvent, PoisonEvent, storable_trace_context
from . import leadership
from .notify import CHANNEL
from .text import optional_readable, readable, storable_json

# Rows come back in the order given (WITH ORDINALITY), so seq follows the batch's order,
# which is the order the claims send a record's changes in.
_INSERT_EVENTS = """
    INSERT INTO events (trigger, event_id, record_id, change, occurred_at, body, trace_context)
    SELECT %(trigger)s, v.event_id, v.record_id, v.change, v.occurred_at, v.body,
           v.trace_context
    FROM unnest(%(event_ids)s::text[], %(record_ids)s::text[], %(changes)s::text[],
                %(occurred)s::timestamptz[], %(bodies)s::bytea[], %(trace_contexts)s::text[])
         WITH ORDINALITY AS v(event_id, record_id, change, occurred_at, body, trace_context, n)
    ORDER BY v.n
    ON CONFLICT (trigger, event_id) DO NOTHING
    RETURNING seq, event_id
"""
# The last statement before the commit, and due from the moment it runs, not from when the
# transaction began: a claim that looked before this commit did so (by the store's clock)
# before the deliveries came due, so a dispatcher comparing "due" with "when I last looked"
# claims again instead of taking them for held back. The notification goes with it.
_INSERT_DELIVERIES = f"""
    WITH inserted AS (
        INSERT INTO deliveries (event_seq, endpoint, order_key, status, next_attempt_at)
        SELECT v.seq, v.endpoint, v.order_key, 'pending', sftriggerd_clock()
        FROM unnest(%s::bigint[], %s::text[], %s::text[]) WITH ORDINALITY
             AS v(seq, endpoint, order_key, n)
        ORDER BY v.n
        RETURNING endpoint)
    SELECT pg_notify('{CHANNEL}', endpoint) FROM (SELECT DISTINCT endpoint FROM inserted) e
"""
_INSERT_POISON = """
    INSERT INTO poison (trigger, reason, message, received_at)
    SELECT v.trigger, v.reason, v.message, coalesce(v.received_at, sftriggerd_now())
    FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[])
         AS v(trigger, reason, message, received_at)
"""
_SAVE_CHECKPOINT = """
    INSERT INTO checkpoints (trigger, position, event_time, updated_at)
    VALUES (%s, %s, %s, sftriggerd_now())
    ON CONFLICT (trigger) DO UPDATE SET position = excluded.position,
        event_time = coalesce(excluded.event_time, checkpoints.event_time),
        updated_at = excluded.updated_at
"""


def order_key(event: NewEvent, endpoint: str) -> str | None:
    """What the endpoint orders this event's delivery by: its record, when it orders."""
    if endpoint in event.ordered_endpoints and event.order_key is not None:
        return readable(event.order_key)
    return None


async def ingest(
    conn: AsyncConnection[Any],
    trigger: str,
    events: Sequence[NewEvent],
    checkpoint: Checkpoint | None,
    poison: Sequence[PoisonEvent] = (),
    fence: Fence | None = None,
) -> IngestResult:
    async with conn.transaction():
        if fence is not None:  # first: a lost lease writes nothing
            await leadership.check_fence(conn, trigger, fence)
        if poison:
            await conn.execute(
                _INSERT_POISON,
                (
                    [readable(item.trigger) for item in poison],
                    [readable(item.reason) for item in poison],
                    [readable(item.message) for item in poison],
                    [item.received_at for item in poison],
                ),
            )
        stored = await _insert_events(conn, trigger, events)
        if checkpoint is not None:
            await conn.execute(
                _SAVE_CHECKPOINT,
                (
                    checkpoint.trigger,
                    Jsonb(storable_json(checkpoint.position)),
                    checkpoint.event_time,
                ),
            )
        # pg_notify inside the transaction: PostgreSQL sends it when, and only if, it
        # commits, so no replica is woken for deliveries rolled back, nor left unwoken by a
        # crash between the commit and a separate NOTIFY.
        await _insert_deliveries(conn, stored)
    deliveries = sum(len(event.endpoints) for _, event in stored)
    return IngestResult(
        new_events=len(stored), duplicate_events=len(events) - len(stored), deliveries=deliveries
    )


async def _insert_events(
    conn: AsyncConnection[Any], trigger: str, events: Sequence[NewEvent]
) -> list[tuple[int, NewEvent]]:
    """The events this call stored, with their seq; those already there are skipped (and a
    second copy within the batch too)."""
    if not events:
        return []
    cursor = await conn.execute(
        _INSERT_EVENTS,
        {
            "trigger": readable(trigger),
            "event_ids": [readable(event.event_id) for event in events],
            "record_ids": [optional_readable(event.record_id) for event in events],
            "changes": [readable(event.change) for event in events],
            "occurred": [event.occurred_at for event in events],
            "bodies": [event.body for event in events],
            "trace_contexts": [storable_trace_context(event.trace_context) for event in events],
        },
    )
    by_id: dict[str, NewEvent] = {}
    for event in events:
        by_id.setdefault(readable(event.event_id), event)
    return [(int(seq), by_id[event_id]) for seq, event_id in await cursor.fetchall()]


async def _insert_deliveries(
    conn: AsyncConnection[Any], stored: list[tuple[int, NewEvent]]
) -> None:
    rows = [
        (seq, endpoint, order_key(event, endpoint))
        for seq, event in sorted(stored, key=lambda item: item[0])
        for endpoint in event.endpoints
    ]
    if rows:
        await conn.execute(
            _INSERT_DELIVERIES,
            ([row[0] for row in rows], [row[1] for row in rows], [row[2] for row in rows]),
        )
