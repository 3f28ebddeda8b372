"""Shed sources drain in the background: a slow drain delays no renewal, a second shed right
after a slow one goes through while the first still drains, a shed lease is released only
once its source has stopped, and shutdown waits for every drain under way."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from structlog.testing import capture_logs

from sftriggerd.ingest import Ingest
from sftriggerd.leadership import Leadership, Timing
from sftriggerd.metrics import Metrics
from sftriggerd.store.base import Store
from tests.leadership.replicas import RecordingSource
from tests.support.waiting import eventually

FAST = Timing(takeover=timedelta(seconds=3), renew_every=timedelta(seconds=1))
DRAIN_S = 0.8


class SlowDrainSource(RecordingSource):
    """Takes `DRAIN_S` to stop; counts how many of its runs were ever under way at once."""

    most_at_once = 0
    under_way = 0

    async def run(self, stopping: asyncio.Event) -> None:
        self.under_way += 1
        self.most_at_once = max(self.most_at_once, self.under_way)
        self.running, self.runs = True, self.runs + 1
        try:
            await stopping.wait()
            await asyncio.sleep(DRAIN_S)
        finally:
            self.under_way -= 1
            self.running, self.stops = False, self.stops + 1


async def heartbeats(store: Store, names: list[str], stopping: asyncio.Event) -> None:
    """Other replicas: live, leading nothing."""
    while not stopping.is_set():
        for name in names:
            await store.heartbeat(name, timedelta(minutes=5))
        await asyncio.sleep(0.3)


async def holder(store: Store, trigger: str) -> str | None:
    lease = {lease.trigger: lease for lease in await store.leases()}.get(trigger)
    return lease.holder if lease is not None and lease.live else None


async def test_a_second_shed_right_after_a_slow_one_leaves_the_kept_triggers_running(
    store: Store,
) -> None:
    metrics = Metrics()
    ingest = Ingest(store, (), metrics)
    sources: dict[str, RecordingSource] = {
        "t1": RecordingSource("t1", ingest),
        "t2": RecordingSource("t2", ingest),
        "t3": SlowDrainSource("t3", ingest),
        "t4": SlowDrainSource("t4", ingest),
    }
    leadership = Leadership(store, "a", sources, FAST, metrics)
    ingest.fence_for = leadership.fence_for
    stopping, others_gone = asyncio.Event(), asyncio.Event()
    others: list[str] = []
    with capture_logs() as logs:
        loop = asyncio.create_task(leadership.run(stopping))
        beating = asyncio.create_task(heartbeats(store, others, others_gone))
        try:
            await eventually(lambda: all(s.running for s in sources.values()))
            others.append("b")  # share 2: t3 and t4 shed, both slow
            await eventually(lambda: not sources["t4"].running, timeout_s=5)
            # While t3 may still drain, "c" joins: the share stays 2 (4 on 3 replicas).
            others.append("c")
            await asyncio.sleep(DRAIN_S + 3 * FAST.renew_every.total_seconds())
            # Released once drained (then taken back as orphans: b and c take nothing).
            assert metrics.registry.get_sample_value(
                "sftriggerd_lease_changes_total", {"trigger": "t3", "change": "released"}
            )
            assert await holder(store, "t1") == "a" and await holder(store, "t2") == "a"
        finally:
            others_gone.set()
            await beating
            stopping.set()
            await loop
    unrenewed = [e["trigger"] for e in logs if e["event"] == "lease_unrenewed_stopping_source"]
    assert unrenewed == [], f"stopped for want of a renewal: {unrenewed}"
    assert [e for e in logs if e["event"] == "lease_lost"] == []
    assert (sources["t1"].stops, sources["t2"].stops) == (1, 1)  # the hand-over's, only
    slow = [s for s in sources.values() if isinstance(s, SlowDrainSource)]
    assert all(s.most_at_once == 1 for s in slow), "a source ran twice at once"
    # Shutdown waited for every drain and released every lease.
    assert not any(s.running for s in sources.values())
    assert all([await holder(store, t) is None for t in sources])


async def test_a_shed_lease_is_renewed_while_its_source_drains_and_released_after(
    store: Store,
) -> None:
    metrics = Metrics()
    ingest = Ingest(store, (), metrics)
    slow = SlowDrainSource("t2", ingest)
    sources: dict[str, RecordingSource] = {"t1": RecordingSource("t1", ingest), "t2": slow}
    leadership = Leadership(store, "a", sources, FAST, metrics)
    ingest.fence_for = leadership.fence_for
    await leadership.round()
    await eventually(lambda: slow.running)
    await store.heartbeat("b", timedelta(minutes=5))
    await leadership.round()  # share 1: t2 shed, draining
    assert slow.running and leadership.leads("t2")
    assert "t2" not in leadership.not_ready_reasons()
    before = {lease.trigger: lease for lease in await store.leases()}["t2"]
    assert before.live
    await leadership.round()  # still draining: renewed all the same, not released
    after = {lease.trigger: lease for lease in await store.leases()}["t2"]
    if slow.running:
        assert after.live and after.epoch == before.epoch
        assert after.expires_at >= before.expires_at
    await eventually(lambda: not leadership.leads("t2"), timeout_s=5)
    assert not slow.running
    assert await holder(store, "t2") is None
    await leadership.hand_over()
