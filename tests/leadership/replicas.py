"""Replicas in one test process: each a `Leadership` over its own sources, sharing a real
store, its sources writing through a real `Ingest` fenced by that replica's leases."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from sftriggerd.ingest import Ingest
from sftriggerd.leadership import Leadership, Timing
from sftriggerd.metrics import Metrics
from sftriggerd.store.base import Store
from sftriggerd.store.records import Checkpoint, IngestResult
from tests.support.clock import ShiftedClock

# Rounds are driven by hand. Leases last takeover - renew_every = 90 s: they never run out
# by themselves within a test; a test runs one out by moving the store's clock past it
# (`run_out`).
STEADY = Timing(takeover=timedelta(seconds=120), renew_every=timedelta(seconds=30))


class RecordingSource:
    """A trigger's source that runs until told to stop and writes only when asked."""

    def __init__(self, trigger: str, ingest: Ingest) -> None:
        self.trigger = trigger
        self.name = f"source:{trigger}"
        self.ingest = ingest
        self.running = False
        self.runs = 0
        self.rebuilds = 0
        self.stops = 0
        self.queued: asyncio.Queue[int] = asyncio.Queue()

    async def run(self, stopping: asyncio.Event) -> None:
        """Runs until `stopping`, writing each position `write_soon` is given."""
        self.running, self.runs = True, self.runs + 1
        stop = asyncio.create_task(stopping.wait())
        try:
            while not stopping.is_set():
                next_write = asyncio.create_task(self.queued.get())
                await asyncio.wait({stop, next_write}, return_when=asyncio.FIRST_COMPLETED)
                if not next_write.done():
                    next_write.cancel()
                    break
                await self.write(next_write.result())
        finally:
            stop.cancel()
            self.running, self.stops = False, self.stops + 1

    def write_soon(self, position: int) -> None:
        """Has the running source write `position`, as it would a batch read from the org."""
        self.queued.put_nowait(position)

    def not_ready_reasons(self) -> list[str]:
        return []

    def rebuild(self) -> None:
        self.rebuilds += 1

    async def write(self, position: int) -> IngestResult:
        """Moves the checkpoint, as a source does with each batch."""
        checkpoint = Checkpoint(trigger=self.trigger, position={"n": position})
        return await self.ingest(self.trigger, [], checkpoint)


@dataclass
class ReplicaRig:
    name: str
    leadership: Leadership
    sources: dict[str, RecordingSource]
    metrics: Metrics = field(default_factory=Metrics)

    def running(self) -> list[str]:
        return sorted(t for t, source in self.sources.items() if source.running)

    def changes(self, trigger: str, change: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "sftriggerd_lease_changes_total", {"trigger": trigger, "change": change}
        )
        return value or 0.0

    def takeovers(self) -> float:
        return self.metrics.registry.get_sample_value("sftriggerd_takeover_seconds_count") or 0.0


def replica(
    store: Store, name: str, triggers: tuple[str, ...] = ("t",), timing: Timing = STEADY
) -> ReplicaRig:
    metrics = Metrics()
    ingest = Ingest(store, (), metrics)
    sources = {trigger: RecordingSource(trigger, ingest) for trigger in triggers}
    leadership = Leadership(store, name, sources, timing, metrics)
    ingest.fence_for = leadership.fence_for
    return ReplicaRig(name, leadership, sources, metrics)


async def run_out(store: Store, clock: ShiftedClock, trigger: str = "t") -> None:
    """Moves the store's clock past the lease's end: its holder is dead (or frozen)."""
    clock.advance(STEADY.lasting + timedelta(seconds=1))
    lease = {lease.trigger: lease for lease in await store.leases()}[trigger]
    assert not lease.live


async def position(store: Store, trigger: str = "t") -> object:
    saved = await store.checkpoint(trigger)
    return None if saved is None else saved.position.get("n")


async def at_position(store: Store, expected: int, trigger: str = "t") -> bool:
    return await position(store, trigger) == expected
