"""Hostile review of leadership (issue 15): `run` cancels its watchdog on the way out without
waiting for it. A watchdog in the middle of stopping an unrenewed source (the store was slow)
is cancelled inside `_stop`, which then cancels the source: at shutdown the draining source is
cut off at once instead of being given the rest of its drain, as `hand_over` promises."""

from __future__ import annotations

import asyncio

from sftriggerd.ingest import Ingest
from sftriggerd.leadership import Leadership
from sftriggerd.metrics import Metrics
from sftriggerd.store.base import Store
from tests.leadership.replicas import STEADY
from tests.support.waiting import eventually


class DrainingSource:
    """Once told to stop, drains until `drained` is set; records a cancellation."""

    name = "source:t"

    def __init__(self) -> None:
        self.draining = False
        self.cancelled = False
        self.drained = asyncio.Event()

    async def run(self, stopping: asyncio.Event) -> None:
        await stopping.wait()
        self.draining = True
        try:
            await self.drained.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    def not_ready_reasons(self) -> list[str]:
        return []


class Monotonic:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


async def test_shutdown_lets_a_source_the_watchdog_is_stopping_drain(store: Store) -> None:
    source = DrainingSource()
    metrics = Metrics()
    ingest = Ingest(store, (), metrics)
    monotonic = Monotonic()
    leadership = Leadership(store, "a", {"t": source}, STEADY, metrics, monotonic=monotonic)
    ingest.fence_for = leadership.fence_for
    stopping = asyncio.Event()
    loop = asyncio.create_task(leadership.run(stopping))
    await eventually(lambda: leadership.leads("t"))
    # The next renewal is late (a slow store): the watchdog tells the source to stop, and
    # gives it the margin to drain.
    monotonic.now_s += STEADY.lasting.total_seconds() - STEADY.margin_s + 0.1
    await eventually(lambda: source.draining)
    stopping.set()  # SIGTERM while it drains
    await asyncio.sleep(0.1)
    source.drained.set()
    await asyncio.wait_for(loop, 10)
    assert not source.cancelled, "the draining source was cancelled at shutdown"
