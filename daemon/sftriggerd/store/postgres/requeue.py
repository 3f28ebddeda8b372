"""Redrives, resends and rewinds on PostgreSQL.

A requeue reads the matching rows, then updates them in chunks, each its own short
transaction that checks the status again, so a large resend never holds many row locks for
long and a row that changed in between is left as it now is. The row keeps its id, so the
claim orders it among its record's changes exactly like a redriven one. Every change wakes
the replicas of the endpoints that got work.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from ..leadership import Fence
from ..records import Checkpoint
from ..replay import Requeued, Selection
from . import leadership
from .notify import CHANNEL
from .text import storable_json

_CHUNK = 500

# Due now, with a fresh max_age clock and attempt count; the store's clock.
_BACK_IN_QUEUE = (
    "status = 'pending', next_attempt_at = sftriggerd_now(), retry_since = sftriggerd_now(),"
    " attempts = 0, finished_at = NULL, lease_token = NULL"
)
_NOTIFY = f"SELECT pg_notify('{CHANNEL}', endpoint) FROM unnest(%s::text[]) AS endpoint"
_SELECTED = """
    SELECT d.id, d.status, d.endpoint FROM deliveries d JOIN events e ON e.seq = d.event_seq
    WHERE (%(id)s::bigint IS NULL OR d.id = %(id)s)
      AND (%(endpoint)s::text IS NULL OR d.endpoint = %(endpoint)s)
      AND (%(trigger)s::text IS NULL OR e.trigger = %(trigger)s)
      AND (%(since)s::timestamptz IS NULL OR d.created_at >= %(since)s)
      AND (%(until)s::timestamptz IS NULL OR d.created_at < %(until)s)
      AND (%(occurred)s::timestamptz IS NULL OR e.occurred_at >= %(occurred)s)
      AND (%(replay)s::numeric IS NULL OR e.seq >= (
          SELECT min(seq) FROM events
          WHERE trigger = %(trigger)s AND sftriggerd_replay_id(body) > %(replay)s))
      AND (%(token)s::text IS NULL OR e.seq > (
          SELECT max(seq) FROM events
          WHERE trigger = %(trigger)s AND sftriggerd_replay_text(body) = %(token)s))
    ORDER BY d.id
"""


async def _back_in_queue(conn: AsyncConnection[Any], where: str, params: tuple[Any, ...]) -> int:
    """Makes the dead deliveries `where` selects pending; one transaction."""
    async with conn.transaction():
        cursor = await conn.execute(
            f"UPDATE deliveries SET {_BACK_IN_QUEUE} WHERE status = 'dead' AND {where}"
            " RETURNING endpoint",
            params,
        )
        endpoints = {row[0] for row in await cursor.fetchall()}
        await conn.execute(_NOTIFY, (sorted(endpoints),))
    return cursor.rowcount


async def redrive(conn: AsyncConnection[Any], delivery_id: int) -> bool:
    return await _back_in_queue(conn, "id = %s", (delivery_id,)) == 1


async def redrive_endpoint(conn: AsyncConnection[Any], endpoint: str) -> int:
    return await _back_in_queue(conn, "endpoint = %s", (endpoint,))


async def requeue(conn: AsyncConnection[Any], selection: Selection) -> Requeued:
    if selection.by_replay and selection.trigger is None:
        raise ValueError("a selection by replay id names its trigger")
    cursor = await conn.execute(
        _SELECTED,
        {
            "id": selection.delivery_id,
            "endpoint": selection.endpoint,
            "trigger": selection.trigger,
            "since": selection.since,
            "until": selection.until,
            "occurred": selection.occurred_since,
            "replay": selection.after_replay_id,
            "token": selection.after_replay_token,
        },
    )
    rows: list[tuple[int, str, str]] = await cursor.fetchall()
    wanted = [delivery_id for delivery_id, status, _ in rows if status in selection.statuses]
    already = sum(1 for _, status, _ in rows if status in ("pending", "in_flight"))
    statuses = sorted(selection.statuses)
    requeued, endpoints = 0, set[str]()
    for start in range(0, len(wanted), _CHUNK):
        async with conn.transaction():
            changed = await conn.execute(
                f"UPDATE deliveries SET {_BACK_IN_QUEUE}"
                " WHERE id = ANY(%s) AND status = ANY(%s) RETURNING endpoint",
                (wanted[start : start + _CHUNK], statuses),
            )
            touched = [row[0] for row in await changed.fetchall()]
            await conn.execute(_NOTIFY, (sorted(set(touched)),))
        requeued += len(touched)
        endpoints.update(touched)
    return Requeued(requeued, already, frozenset(endpoints))


async def rewind(
    conn: AsyncConnection[Any],
    trigger: str,
    checkpoint: Checkpoint,
    fence: Fence | None = None,
) -> None:
    """Replaces the trigger's checkpoint, also when it moves back (which `ingest` never
    does): the position, and the event time exactly as given (None clears it)."""
    async with conn.transaction():
        if fence is not None:
            await leadership.check_fence(conn, trigger, fence)
        await conn.execute(
            "INSERT INTO checkpoints (trigger, position, event_time, updated_at)"
            " VALUES (%s, %s, %s, sftriggerd_now()) ON CONFLICT (trigger) DO UPDATE SET"
            " position = excluded.position, event_time = excluded.event_time,"
            " updated_at = excluded.updated_at",
            (trigger, Jsonb(storable_json(checkpoint.position)), checkpoint.event_time),
        )
