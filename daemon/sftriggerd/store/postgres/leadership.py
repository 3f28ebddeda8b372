"""The PostgreSQL engine's leadership: trigger leases with epochs, replica heartbeats, and
the fence check that `ingest` and `rewind` run first inside their transaction.

Every time is the database's clock (`sftriggerd_now()`), so replicas whose clocks disagree
still agree on whose lease ran out. The fence check reads the lease row `FOR SHARE`: an
acquisition, renewal or release (each an UPDATE of that row) waits until the checking
transaction ends, so no takeover commits between the check and the write it guards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

from ..leadership import Fence, LeaseLostError, Replica, TriggerLease
from .notify import LEASES_CHANNEL

_COLUMNS = "trigger, holder, epoch, acquired_at, expires_at, expires_at > sftriggerd_now()"


def _lease(row: tuple[Any, ...]) -> TriggerLease:
    return TriggerLease(
        trigger=row[0],
        holder=row[1],
        epoch=int(row[2]),
        acquired_at=row[3],
        expires_at=row[4],
        live=bool(row[5]),
    )


async def check_fence(conn: AsyncConnection[Any], trigger: str, fence: Fence) -> None:
    """Raises `LeaseLostError` unless the fence holds the trigger's running lease; call it
    first inside the writer's transaction."""
    cursor = await conn.execute(
        "SELECT holder, epoch, expires_at > sftriggerd_now() FROM trigger_leases"
        " WHERE trigger = %s FOR SHARE",
        (trigger,),
    )
    row = await cursor.fetchone()
    if row is None or (row[0], int(row[1])) != (fence.replica, fence.epoch) or not row[2]:
        raise LeaseLostError(trigger, fence)


async def acquire(
    conn: AsyncConnection[Any], trigger: str, replica: str, lasting: timedelta
) -> TriggerLease | None:
    async with conn.transaction():
        cursor = await conn.execute(
            "SELECT holder, epoch, least(expires_at, sftriggerd_now()),"
            " expires_at > sftriggerd_now() FROM trigger_leases WHERE trigger = %s FOR UPDATE",
            (trigger,),
        )
        row = await cursor.fetchone()
        if row is None:
            # Never held: the first of replicas racing for it inserts it, the others none.
            cursor = await conn.execute(
                "INSERT INTO trigger_leases (trigger, holder, epoch, acquired_at, expires_at)"
                " VALUES (%s, %s, 1, sftriggerd_now(), sftriggerd_now() + %s)"
                f" ON CONFLICT (trigger) DO NOTHING RETURNING {_COLUMNS}",
                (trigger, replica, lasting),
            )
            inserted = await cursor.fetchone()
            return None if inserted is None else _lease(inserted)
        holder, _, ended_at, live = row
        if live and holder != replica:
            return None
        # Free, or held under this replica's name by an earlier process of it (a restart):
        # the next epoch either way, which fences that process out should it still run.
        cursor = await conn.execute(
            "UPDATE trigger_leases SET holder = %s, epoch = epoch + 1,"
            " acquired_at = sftriggerd_now(), expires_at = sftriggerd_now() + %s"
            f" WHERE trigger = %s RETURNING {_COLUMNS}",
            (replica, lasting, trigger),
        )
        updated = await cursor.fetchone()
    assert updated is not None, "the row is locked FOR UPDATE by this transaction"
    return dataclasses.replace(_lease(updated), previous_ended_at=ended_at)


async def renew(
    conn: AsyncConnection[Any], replica: str, epochs: Mapping[str, int], lasting: timedelta
) -> list[TriggerLease]:
    if not epochs:
        return []
    triggers = sorted(epochs)
    cursor = await conn.execute(
        "UPDATE trigger_leases AS l SET expires_at = sftriggerd_now() + %(lasting)s"
        " FROM unnest(%(triggers)s::text[], %(epochs)s::bigint[]) AS v(trigger, epoch)"
        " WHERE l.trigger = v.trigger AND l.epoch = v.epoch AND l.holder = %(replica)s"
        "   AND l.expires_at > sftriggerd_now()"
        " RETURNING l.trigger, l.holder, l.epoch, l.acquired_at, l.expires_at,"
        "   l.expires_at > sftriggerd_now()",
        {
            "lasting": lasting,
            "triggers": triggers,
            "epochs": [epochs[trigger] for trigger in triggers],
            "replica": replica,
        },
    )
    return sorted((_lease(row) for row in await cursor.fetchall()), key=lambda x: x.trigger)


async def release(conn: AsyncConnection[Any], trigger: str, fence: Fence) -> bool:
    """Ends the lease now, and tells the listening followers (`notify.LEASES_CHANNEL`) so
    that one takes the trigger at once; the notification goes out with the commit."""
    cursor = await conn.execute(
        "WITH released AS (UPDATE trigger_leases SET expires_at = sftriggerd_now()"
        " WHERE trigger = %s AND holder = %s AND epoch = %s AND expires_at > sftriggerd_now()"
        f" RETURNING trigger) SELECT pg_notify('{LEASES_CHANNEL}', trigger) FROM released",
        (trigger, fence.replica, fence.epoch),
    )
    return len(await cursor.fetchall()) == 1


async def leases(conn: AsyncConnection[Any]) -> list[TriggerLease]:
    cursor = await conn.execute(f"SELECT {_COLUMNS} FROM trigger_leases ORDER BY trigger")
    return [_lease(row) for row in await cursor.fetchall()]


async def heartbeat(conn: AsyncConnection[Any], replica: str, forget_after: timedelta) -> None:
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO replicas (name, started_at, heartbeat_at)"
            " VALUES (%s, sftriggerd_now(), sftriggerd_now())"
            " ON CONFLICT (name) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
            (replica,),
        )
        await conn.execute(
            "DELETE FROM replicas WHERE heartbeat_at < sftriggerd_now() - %s AND name <> %s",
            (forget_after, replica),
        )


async def retire(conn: AsyncConnection[Any], replica: str) -> None:
    await conn.execute("DELETE FROM replicas WHERE name = %s", (replica,))


async def replicas(conn: AsyncConnection[Any], seen_within: timedelta | None) -> list[Replica]:
    if seen_within is None:
        cursor = await conn.execute(
            "SELECT name, started_at, heartbeat_at FROM replicas ORDER BY name"
        )
    else:
        cursor = await conn.execute(
            "SELECT name, started_at, heartbeat_at FROM replicas"
            " WHERE heartbeat_at >= sftriggerd_now() - %s ORDER BY name",
            (seen_within,),
        )
    rows: list[tuple[str, datetime, datetime]] = await cursor.fetchall()
    return [Replica(name, started, beat) for name, started, beat in rows]
