"""The PostgreSQL engine's side of a move (`store.transfer`), each on a connection of its own
holding one transaction from the first row to the last.

An export reads in REPEATABLE READ (one snapshot) after locking the tables in SHARE mode:
replicas left running can still read, but their writes wait until the export ends. An
import locks the tables in EXCLUSIVE mode, checks they are empty, writes every batch with
its ids kept (OVERRIDING SYSTEM VALUE), then moves the id sequences past them; a crash before
the commit leaves the database as empty as it was.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Sequence
from itertools import groupby
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from ...errors import StoreError
from ..records import AttemptRow, Checkpoint, PoisonEvent, storable_trace_context
from ..transfer import (
    DeliveryDump,
    DumpBatch,
    DumpRecord,
    EventDump,
    Page,
    Sorted,
    led_by_replicas,
    not_empty,
    open_delivery,
    paged,
    sort_batch,
)
from .inspect import checkpoints
from .text import optional_readable, readable, storable_json

TABLES = "events, deliveries, checkpoints, attempts, poison"
# How long a move waits for others (a replica left running) to let go of the tables.
LOCK_TIMEOUT = "10s"

_DELIVERIES = """
    SELECT id, event_seq, endpoint, order_key, status, attempts, next_attempt_at,
           last_status, last_error, created_at, retry_since, finished_at
    FROM deliveries WHERE id > %s ORDER BY id LIMIT %s
"""
_INSERT_DELIVERY = """
    INSERT INTO deliveries (id, event_seq, endpoint, order_key, status, attempts,
        next_attempt_at, last_status, last_error, created_at, retry_since, finished_at)
    OVERRIDING SYSTEM VALUE
    VALUES (%(id)s, %(event_seq)s, %(endpoint)s, %(order_key)s, %(status)s, %(attempts)s,
        CASE WHEN %(open)s THEN coalesce(%(due)s::timestamptz, sftriggerd_now()) END,
        %(last_status)s, %(last_error)s, %(created_at)s, %(retry_since)s,
        CASE WHEN NOT %(open)s THEN coalesce(%(finished_at)s::timestamptz, sftriggerd_now()) END)
"""


async def export_dump(
    connect: Callable[[], Awaitable[AsyncConnection[Any]]], where: str, batch_rows: int
) -> AsyncGenerator[DumpBatch, None]:
    conn = await connect()
    try:
        await conn.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
        async with conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            try:
                # Before any read: the snapshot is taken by the first query after the lock.
                await conn.execute(f"LOCK TABLE {TABLES} IN SHARE MODE")
            except psycopg.errors.LockNotAvailable as exc:
                raise StoreError(
                    f"{where}: its tables stay busy with writes: stop every replica first"
                ) from exc
            pages: list[Page] = [
                lambda after, limit: _events_after(conn, after, limit),
                lambda after, limit: _deliveries_after(conn, after, limit),
                lambda after, limit: _poison_after(conn, after, limit),
            ]
            async for batch in paged(lambda: _checkpoints(conn), pages, batch_rows):
                yield batch
    finally:
        await conn.close()


async def _checkpoints(conn: AsyncConnection[Any]) -> list[Checkpoint]:
    return sorted(await checkpoints(conn), key=lambda c: c.trigger)


async def _events_after(
    conn: AsyncConnection[Any], after: int, limit: int
) -> tuple[Sequence[DumpRecord], int]:
    cursor = await conn.execute(
        "SELECT seq, trigger, event_id, record_id, change, occurred_at, body, created_at,"
        " trace_context FROM events WHERE seq > %s ORDER BY seq LIMIT %s",
        (after, limit),
    )
    events = [
        EventDump(int(r[0]), r[1], r[2], r[3], r[4], r[5], bytes(r[6]), r[7], r[8])
        for r in await cursor.fetchall()
    ]
    return events, events[-1].seq if events else after


async def _deliveries_after(
    conn: AsyncConnection[Any], after: int, limit: int
) -> tuple[Sequence[DumpRecord], int]:
    rows = await (await conn.execute(_DELIVERIES, (after, limit))).fetchall()
    if not rows:
        return [], after
    cursor = await conn.execute(
        "SELECT delivery_id, at, duration_ms, status, error, answer, next_attempt_at"
        " FROM attempts WHERE delivery_id BETWEEN %s AND %s ORDER BY delivery_id, id",
        (rows[0][0], rows[-1][0]),
    )
    history = {
        int(delivery_id): tuple(AttemptRow(*a[1:]) for a in attempts)
        for delivery_id, attempts in groupby(await cursor.fetchall(), key=lambda a: a[0])
    }
    found = []
    for r in rows:
        status, due, was_in_flight = open_delivery(r[4], r[6])
        found.append(
            DeliveryDump(
                id=int(r[0]),
                event_seq=int(r[1]),
                endpoint=r[2],
                order_key=r[3],
                status=status,
                attempts=r[5],
                next_attempt_at=due,
                last_status=r[7],
                last_error=r[8],
                created_at=r[9],
                retry_since=r[10],
                finished_at=r[11],
                history=history.get(int(r[0]), ()),
                was_in_flight=was_in_flight,
            )
        )
    return found, int(rows[-1][0])


async def _poison_after(
    conn: AsyncConnection[Any], after: int, limit: int
) -> tuple[Sequence[DumpRecord], int]:
    cursor = await conn.execute(
        "SELECT id, trigger, reason, message, received_at FROM poison"
        " WHERE id > %s ORDER BY id LIMIT %s",
        (after, limit),
    )
    rows = await cursor.fetchall()
    poison = [PoisonEvent(r[1], r[2], r[3], r[4]) for r in rows]
    return poison, int(rows[-1][0]) if rows else after


async def import_dump(
    conn: AsyncConnection[Any], where: str, dump: AsyncIterable[DumpBatch]
) -> None:
    async with conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        try:
            await conn.execute(f"LOCK TABLE {TABLES} IN EXCLUSIVE MODE")
            # The leases too: EXCLUSIVE waits out a fenced write under way (it holds its lease
            # row FOR SHARE) and keeps any replica from taking a lease until the commit.
            await conn.execute("LOCK TABLE trigger_leases, replicas IN EXCLUSIVE MODE")
        except psycopg.errors.LockNotAvailable as exc:
            raise StoreError(
                f"{where}: its tables stay busy: stop every replica that runs on it first"
            ) from exc
        counted = await conn.execute(
            "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM deliveries)"
            " + (SELECT count(*) FROM checkpoints) + (SELECT count(*) FROM attempts)"
            " + (SELECT count(*) FROM poison)"
        )
        found = await counted.fetchone()
        if found is not None and found[0]:
            raise not_empty(f"postgresql store {where}", int(found[0]))
        leading = await conn.execute(
            "SELECT count(*) FROM trigger_leases WHERE expires_at > sftriggerd_now()"
        )
        led = await leading.fetchone()
        if led is not None and led[0]:
            raise led_by_replicas(f"postgresql store {where}", int(led[0]))
        # Leases left by stopped replicas: whoever starts next takes them under a new epoch.
        await conn.execute("UPDATE trigger_leases SET epoch = epoch + 1")
        async for batch in dump:
            await _write(conn, sort_batch(batch))
        for table, column in (("events", "seq"), ("deliveries", "id")):
            # Past the ids kept, so the next ingest numbers on from the source's last.
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), max({column}))"
                f" FROM {table}"
            )


async def _write(conn: AsyncConnection[Any], batch: Sorted) -> None:
    async with conn.cursor() as cursor:
        if batch.checkpoints:
            await cursor.executemany(
                "INSERT INTO checkpoints (trigger, position, event_time, updated_at)"
                " VALUES (%s, %s, %s, coalesce(%s, sftriggerd_now()))",
                [
                    (
                        readable(c.trigger),
                        Jsonb(storable_json(c.position)),
                        c.event_time,
                        c.updated_at,
                    )
                    for c in batch.checkpoints
                ],
            )
        if batch.events:
            await cursor.executemany(
                "INSERT INTO events (seq, trigger, event_id, record_id, change, occurred_at,"
                " body, created_at, trace_context) OVERRIDING SYSTEM VALUE"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        e.seq,
                        readable(e.trigger),
                        readable(e.event_id),
                        optional_readable(e.record_id),
                        readable(e.change),
                        e.occurred_at,
                        e.body,
                        e.created_at,
                        storable_trace_context(e.trace_context),
                    )
                    for e in batch.events
                ],
            )
        if batch.deliveries:
            await _write_deliveries(cursor, batch.deliveries)
        if batch.poison:
            await cursor.executemany(
                "INSERT INTO poison (trigger, reason, message, received_at)"
                " VALUES (%s, %s, %s, coalesce(%s, sftriggerd_now()))",
                [
                    (readable(p.trigger), readable(p.reason), readable(p.message), p.received_at)
                    for p in batch.poison
                ],
            )


async def _write_deliveries(
    cursor: psycopg.AsyncCursor[Any], deliveries: Sequence[DeliveryDump]
) -> None:
    await cursor.executemany(
        _INSERT_DELIVERY,
        [
            {
                "id": d.id,
                "event_seq": d.event_seq,
                "endpoint": readable(d.endpoint),
                "order_key": optional_readable(d.order_key),
                "status": "pending" if d.status == "in_flight" else d.status,
                "attempts": d.attempts,
                "open": d.status in ("pending", "in_flight"),
                "due": d.next_attempt_at,
                "last_status": d.last_status,
                "last_error": optional_readable(d.last_error),
                "created_at": d.created_at,
                "retry_since": d.retry_since,
                "finished_at": d.finished_at,
            }
            for d in deliveries
        ],
    )
    attempts = [
        (
            d.id,
            a.at,
            a.duration_ms,
            a.status,
            optional_readable(a.error),
            optional_readable(a.answer),
            a.next_attempt_at,
        )
        for d in deliveries
        for a in d.history
    ]
    if attempts:
        await cursor.executemany(
            "INSERT INTO attempts (delivery_id, at, duration_ms, status, error, answer,"
            " next_attempt_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            attempts,
        )
