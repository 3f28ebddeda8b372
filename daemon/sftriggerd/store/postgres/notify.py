"""Wake-ups between replicas: a commit that gives an endpoint due work (ingest, release,
redrive, resend) notifies `CHANNEL` with the endpoint's name as payload, and a lease's release
notifies `LEASES_CHANNEL` with the trigger's name; `wake_ups` listens to both.

Notifications are a hint, never the work itself: one sent while a listener is reconnecting
is lost, so every (re)connection first yields a wake-up for every endpoint
(`WakeUp(endpoint=None)`), and a dispatcher must still look for due work on its own timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import psycopg
from psycopg import AsyncConnection

from ..wake_ups import LeaseReleased, WakeUp

CHANNEL = "sftriggerd_due"
LEASES_CHANNEL = "sftriggerd_leases"
# Waits between reconnections of a lost listener, growing to the last.
RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)


Connect = Callable[[], Awaitable[AsyncConnection[Any]]]


async def wake_ups(connect: Connect) -> AsyncGenerator[WakeUp | LeaseReleased, None]:
    """Listens on a connection of its own (never one of the pool's: a pooled connection is
    shared, and LISTEN belongs to a session). Reconnects when the connection is lost."""
    failures = 0
    while True:
        try:
            conn = await connect()
        except psycopg.OperationalError:
            await asyncio.sleep(RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)])
            failures += 1
            continue
        try:
            await conn.execute(f"LISTEN {CHANNEL}")
            await conn.execute(f"LISTEN {LEASES_CHANNEL}")
            failures = 0
            yield WakeUp(endpoint=None)
            async for notification in conn.notifies():
                if notification.channel == LEASES_CHANNEL:
                    yield LeaseReleased(trigger=notification.payload)
                else:
                    yield WakeUp(endpoint=notification.payload)
        except psycopg.OperationalError:
            await asyncio.sleep(RECONNECT_DELAYS[0])
        finally:
            await conn.close()
