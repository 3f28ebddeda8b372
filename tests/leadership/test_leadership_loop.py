"""The leadership loop as the daemon runs it: rounds on their own period, the watchdog that
stops a source whose lease could not be renewed, and the hand-over when asked to stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest

from sftriggerd.errors import StoreError
from sftriggerd.leadership import Leadership, Timing
from sftriggerd.store.base import Store
from tests.leadership.replicas import (
    RecordingSource,
    ReplicaRig,
    at_position,
    position,
    replica,
)
from tests.support.waiting import eventually

# A lease lasts 1.5 s; a source not renewed is told to stop 0.375 s before it runs out.
LOOP = Timing(takeover=timedelta(seconds=2), renew_every=timedelta(seconds=0.5))
# Leases that would take a minute to run out: only a release hands one over in a test.
SLOW = Timing(takeover=timedelta(seconds=60), renew_every=timedelta(seconds=0.2))
# Rounds a minute apart: only one asked for early runs within a test.
SELDOM = Timing(takeover=timedelta(seconds=180), renew_every=timedelta(seconds=60))


@asynccontextmanager
async def running(leadership: Leadership) -> AsyncIterator[asyncio.Event]:
    stopping = asyncio.Event()
    task = asyncio.create_task(leadership.run(stopping))
    try:
        yield stopping
    finally:
        stopping.set()
        await task


class LeaseCheckingSource(RecordingSource):
    """Notes, as it stops, whether the store still counts its replica's lease as running."""

    def __init__(self, source: RecordingSource, store: Store) -> None:
        super().__init__(source.trigger, source.ingest)
        self.store = store
        self.lease_live_at_stop: list[bool] = []

    async def run(self, stopping: asyncio.Event) -> None:
        await super().run(stopping)
        [lease] = await self.store.leases()
        self.lease_live_at_stop.append(lease.live)


def checking(rig: ReplicaRig, store: Store) -> LeaseCheckingSource:
    source = LeaseCheckingSource(rig.sources["t"], store)
    rig.sources["t"] = source
    rig.leadership.sources["t"] = source
    return source


@pytest.mark.parametrize("down", ["hangs", "fails"])
async def test_a_store_that_stops_answering_renewals_stops_the_source_first(
    store: Store, monkeypatch: pytest.MonkeyPatch, down: str
) -> None:
    a = replica(store, "a", timing=LOOP)
    source = checking(a, store)
    async with running(a.leadership):
        await eventually(lambda: a.running() == ["t"])
        down_event, down_how = asyncio.Event(), down
        answering = {name: getattr(store, name) for name in ("heartbeat", "renew_leases")}

        def stuck(name: str) -> Callable[..., Any]:
            async def call(*args: Any, **kwargs: Any) -> Any:
                if down_how == "fails":
                    raise StoreError("connection refused (the test's store is down)")
                await down_event.wait()  # the store no longer answers (never, in this test)
                return await answering[name](*args, **kwargs)

            return call

        for name in answering:
            monkeypatch.setattr(store, name, stuck(name))
        await eventually(lambda: source.lease_live_at_stop != [])
        assert source.lease_live_at_stop == [True]  # stopped before the lease could pass on
        # The store answers again: the lease ran out meanwhile, so it is taken afresh.
        for name, method in answering.items():
            monkeypatch.setattr(store, name, method)
        await eventually(lambda: a.running() == ["t"])
        [lease] = await store.leases()
        assert (lease.holder, lease.epoch, lease.live) == ("a", 2, True)
        assert a.changes("t", "lost") == 1 and a.changes("t", "acquired") == 2
        assert source.rebuilds == 2  # started from the store's position both times


async def test_stopping_hands_over_at_once_to_a_running_follower(store: Store) -> None:
    a, b = replica(store, "a", timing=SLOW), replica(store, "b", timing=SLOW)
    async with running(a.leadership) as stopping_a:
        await eventually(lambda: a.running() == ["t"])
        async with running(b.leadership):
            await eventually(lambda: b.leadership.leader_of("t") == "a")
            stopping_a.set()  # SIGTERM
            # The lease would run for a minute more: only the release lets "b" take it now.
            await eventually(lambda: b.running() == ["t"])
            assert a.running() == [] and a.changes("t", "released") == 1
            [lease] = await store.leases()
            assert (lease.holder, lease.epoch) == ("b", 2)


async def test_a_source_fenced_out_stops_without_waiting_for_the_next_round(
    store: Store,
) -> None:
    a, b = replica(store, "a", timing=SELDOM), replica(store, "b", timing=SELDOM)
    async with running(a.leadership):
        await eventually(lambda: a.running() == ["t"])
        a.sources["t"].write_soon(1)
        await eventually(lambda: at_position(store, 1))
        # Another replica holds the trigger now, behind "a"'s back (as after a pause of
        # "a" past its lease: released here, so the test need not wait for it to run out).
        await store.release_lease("t", a.leadership.fence_for("t"))
        await b.leadership.round()
        a.sources["t"].write_soon(2)  # refused: the source stops, and a round runs at once
        await eventually(lambda: a.leadership.led() == [])
        assert a.running() == [] and a.changes("t", "lost") == 1
        assert await position(store) == 1
