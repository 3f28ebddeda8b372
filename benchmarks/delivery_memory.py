"""Where the gap between durable delivery and raw POSTs lies: the real dispatcher fed from
memory (claims prebuilt, outcomes dropped), its own ceiling without any store."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import count as counter

from delivery_workload import ENDPOINT, TRIGGER, Figures, endpoint_settings

from sftriggerd.delivery import Dispatcher
from sftriggerd.events.model import Event
from sftriggerd.ingest import Ingest
from sftriggerd.metrics import Metrics
from sftriggerd.store.memory import MemoryStore
from sftriggerd.store.records import Claim, OutboxCounts, Outcome


class MemoryOutbox(MemoryStore):
    """An open store whose outbox answers from memory: claims prebuilt, outcomes dropped.
    Not durable; it shows what the dispatcher itself costs beside the POSTs."""

    def __init__(self, claims: list[Claim]) -> None:
        super().__init__()
        self._claims = claims
        self._total = len(claims)
        self.recorded = 0
        self.all_recorded = asyncio.Event()

    async def claim_due(self, endpoint: str, limit: int, lease: timedelta) -> list[Claim]:
        taken, self._claims = self._claims[:limit], self._claims[limit:]
        return taken

    async def record_outcomes(self, outcomes: Sequence[tuple[Claim, Outcome]]) -> list[bool]:
        self.recorded += len(outcomes)
        if self.recorded >= self._total:
            self.all_recorded.set()
        return [True] * len(outcomes)

    async def next_due_in(self, endpoint: str) -> timedelta | None:
        return None

    async def outbox_counts(self) -> dict[str, OutboxCounts]:
        return {}


def memory_claims(events: Sequence[Event], ingest: Ingest) -> list[Claim]:
    """A claim per event, as the store would hand them out."""
    far = datetime.now(UTC) + timedelta(days=1)
    ids = counter(1)
    return [
        Claim(
            delivery_id=next(ids),
            endpoint=ENDPOINT,
            trigger=TRIGGER,
            event_id=event.id,
            body=ingest.prepare(event).body,
            attempts=0,
            retry_since=event.occurred_at,
            occurred_at=event.occurred_at,
            lease_token="memory",
            lease_until=far,
        )
        for event in events
    ]


async def dispatcher_alone(
    url: str, events: Sequence[Event], ingest: Ingest, args: argparse.Namespace
) -> Figures:
    store = MemoryOutbox(memory_claims(events, ingest))
    await store.open()
    stopping = asyncio.Event()
    try:
        dispatcher = Dispatcher(store, [endpoint_settings(url, args)], Metrics())
        started, cpu = time.perf_counter(), time.process_time()
        running = asyncio.create_task(dispatcher.run(stopping))
        await store.all_recorded.wait()
        elapsed, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        stopping.set()
        await running
    finally:
        await store.close()
    return Figures(len(events), elapsed, [0.0], cpu_s)
