"""Hostile review of leadership (issue 15): a source run cut off in the background keeps
writing after its lease is lost and the same replica takes the trigger again.

The fence a write carries is looked up per trigger at write time (`Leadership.fence_for`), not
per run. `RestartableSource.run` (the daemon's wrapper) cancels its inner run when cut off but
does not wait for it, so leadership sees the run over while the inner source still finishes
(a final checkpoint flush in its `finally`). Once this replica holds the trigger again, that
stale run's write carries the new epoch and the store takes it: two runs, both writing."""

from __future__ import annotations

import asyncio

from sftriggerd.ingest import Ingest
from sftriggerd.leadership import Leadership
from sftriggerd.metrics import Metrics
from sftriggerd.sources.restartable import RestartableSource
from sftriggerd.store.base import Store
from sftriggerd.store.leadership import LeaseLostError
from sftriggerd.store.records import Checkpoint
from tests.leadership.replicas import STEADY, position, run_out
from tests.support.clock import ShiftedClock
from tests.support.waiting import eventually


class FlushingSource:
    """Runs until told to stop; on the way out (even cancelled) flushes its last position,
    once `flush_allowed` is set. Each run has its own number, the position it writes."""

    name = "source:t"
    runs = 0

    def __init__(self, ingest: Ingest, flush_allowed: asyncio.Event, refused: list[int]) -> None:
        FlushingSource.runs += 1
        self.run_number = FlushingSource.runs
        self.ingest = ingest
        self.flush_allowed = flush_allowed
        self.refused = refused
        self.flushing = False
        self.flushed = False
        self.flush: asyncio.Future[None] | None = None

    async def run(self, stopping: asyncio.Event) -> None:
        try:
            await stopping.wait()
        finally:
            self.flushing = True
            # The last write is in flight when the run is cut off: a commit the database goes
            # on with whether or not its client is still waiting (shielded here so).
            self.flush = asyncio.ensure_future(self._flush())
            await asyncio.shield(self.flush)

    async def _flush(self) -> None:
        await self.flush_allowed.wait()
        checkpoint = Checkpoint(trigger="t", position={"n": self.run_number})
        try:
            await self.ingest("t", [], checkpoint)
        except LeaseLostError:
            self.refused.append(self.run_number)
        finally:
            self.flushed = True

    def not_ready_reasons(self) -> list[str]:
        return []


class Monotonic:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


async def test_a_cut_off_run_cannot_write_once_the_replica_leads_again(
    store: Store, clock: ShiftedClock
) -> None:
    FlushingSource.runs = 0
    flush_allowed = asyncio.Event()
    refused: list[int] = []
    metrics = Metrics()
    ingest = Ingest(store, (), metrics)
    built: list[FlushingSource] = []

    def build() -> FlushingSource:
        built.append(FlushingSource(ingest, flush_allowed, refused))
        return built[-1]

    source = RestartableSource("t", build)
    monotonic = Monotonic()
    a = Leadership(store, "a", {"t": source}, STEADY, metrics, monotonic=monotonic)
    ingest.fence_for = a.fence_for
    await a.round()
    assert a.leads("t")
    first_run = built[-1]  # rebuilt at the start: the run under the first lease
    await eventually(lambda: FlushingSource.runs >= 2)
    # A freezes past its lease; b takes the trigger, then shuts down and releases it.
    await run_out(store, clock)
    monotonic.now_s += STEADY.lasting.total_seconds() + 1
    taken = await store.acquire_lease("t", "b", STEADY.lasting)
    assert taken is not None
    await a.round()  # renewal refused: lost, its source cut off at once (no time left)
    assert not a.leads("t")
    await eventually(lambda: first_run.flushing)
    await eventually(lambda: "t" not in a._stops)
    assert await store.release_lease("t", taken.fence)
    await a.round()  # a leads t again, under a new epoch, with a new run
    assert a.leads("t")
    flush_allowed.set()  # the old, cut-off run's flush; the new run is still running
    await eventually(lambda: first_run.flushed)
    try:
        assert first_run.run_number in refused, (
            f"the cut-off run {first_run.run_number} wrote under the new lease: position"
            f" {await position(store)}"
        )
    finally:
        await a.hand_over()


async def test_a_run_the_watchdog_cut_off_cannot_write_beside_its_restarted_successor(
    store: Store,
) -> None:
    FlushingSource.runs = 0
    flush_allowed = asyncio.Event()
    refused: list[int] = []
    metrics = Metrics()
    ingest = Ingest(store, (), metrics)
    built: list[FlushingSource] = []

    def build() -> FlushingSource:
        built.append(FlushingSource(ingest, flush_allowed, refused))
        return built[-1]

    source = RestartableSource("t", build)
    monotonic = Monotonic()
    a = Leadership(store, "a", {"t": source}, STEADY, metrics, monotonic=monotonic)
    ingest.fence_for = a.fence_for
    stopping = asyncio.Event()
    watchdog = asyncio.create_task(a._watch(stopping))
    try:
        await a.round()
        first_run = built[-1]
        # The renewal is late past the lease's end by this replica's reckoning (a store that
        # stalled): the watchdog cuts the source off at once.
        monotonic.now_s += STEADY.lasting.total_seconds() + 1
        await eventually(lambda: first_run.flushing)
        await eventually(lambda: a._held["t"].task is not None and a._held["t"].task.done())
        await a.round()  # the store answers again: renewed, the source started afresh
        assert a.leads("t") and built[-1] is not first_run
        flush_allowed.set()  # the cut-off run still finishes its flush
        await eventually(lambda: first_run.flushed)
        assert first_run.run_number in refused, (
            f"the cut-off run {first_run.run_number} wrote beside its successor"
            f" {built[-1].run_number}: position {await position(store)}"
        )
    finally:
        stopping.set()
        await watchdog
        await a.hand_over()
