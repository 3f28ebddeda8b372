"""A live lease under this replica's own name that this process does not hold is told apart by
renewal: one nobody renews (a dead process's, a lost answer) is a leftover and taken; one that
another process renews is a twin's, left to it and said. And the aftermath of a recovery: a
restart right after a lost acquisition answer was recovered from."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from sftriggerd.errors import StoreError
from sftriggerd.ingest import Ingest
from sftriggerd.leadership import Leadership
from sftriggerd.metrics import Metrics
from sftriggerd.store.base import Store
from sftriggerd.store.leadership import LeaseLostError, TriggerLease
from tests.leadership.replicas import STEADY, RecordingSource, ReplicaRig, replica
from tests.support.waiting import eventually

TRIGGERS = ("t1", "t2", "t3", "t4")


class FakeMonotonic:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def clocked_replica(store: Store, name: str, monotonic: FakeMonotonic) -> ReplicaRig:
    metrics = Metrics()
    ingest = Ingest(store, (), metrics)
    sources = {trigger: RecordingSource(trigger, ingest) for trigger in ("t1", "t2")}
    leadership = Leadership(store, name, sources, STEADY, metrics, monotonic=monotonic)
    ingest.fence_for = leadership.fence_for
    return ReplicaRig(name, leadership, sources, metrics)


async def stop(*rigs: ReplicaRig) -> None:
    for rig in rigs:
        for held in rig.leadership._held.values():
            held.stopping.set()
    for rig in rigs:
        await eventually(lambda rig=rig: rig.running() == [])


async def lease_of(store: Store, trigger: str) -> TriggerLease:
    return {lease.trigger: lease for lease in await store.leases()}[trigger]


async def taken_from_under(store: Store, rig: ReplicaRig) -> TriggerLease:
    """Another process of the same name takes t2 from `rig` (next epoch); `rig`'s next round
    loses it. Returns that process's lease."""
    lease = await store.acquire_lease("t2", rig.name, STEADY.lasting)
    assert lease is not None
    await rig.leadership.round()
    assert rig.leadership.led() == ["t1"]
    return lease


@pytest.mark.parametrize("renewed", [False, True], ids=["left", "renewed"])
async def test_an_own_name_lease_is_a_twins_only_if_someone_renews_it(
    store: Store, renewed: bool
) -> None:
    monotonic = FakeMonotonic()
    a = clocked_replica(store, "a", monotonic)
    await a.leadership.round()
    assert a.leadership.led() == ["t1", "t2"]
    other = await taken_from_under(store, a)
    try:
        with capture_logs() as logs:
            await a.leadership.round()  # seen once: not taken, not said
            assert a.leadership.led() == ["t1"] and a.leadership.not_ready_reasons() == []
            monotonic.now_s += 2 * STEADY.renew_every.total_seconds()
            if renewed:  # the other process runs on: its round renews the lease
                [renewal] = await store.renew_leases("a", {"t2": other.epoch}, STEADY.lasting)
                assert renewal.expires_at > other.expires_at
            await a.leadership.round()
        said = [e["trigger"] for e in logs if e["event"] == "replica_name_shared"]
        if renewed:
            assert said == ["t2"] and a.leadership.led() == ["t1"]
            assert "another process runs as replica a" in a.leadership.not_ready_reasons()[0]
            assert (await lease_of(store, "t2")).epoch == other.epoch
        else:
            assert said == [] and a.leadership.led() == ["t1", "t2"]
            assert a.leadership.not_ready_reasons() == []
            assert (await lease_of(store, "t2")).epoch == other.epoch + 1
            await eventually(lambda: a.running() == ["t1", "t2"])
    finally:
        await stop(a)


async def test_a_restart_right_after_a_lost_answer_was_recovered_leads_everything(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = replica(store, "b", TRIGGERS)
    await b.leadership.round()
    a = replica(store, "a", TRIGGERS)
    for rig in (a, b, a):
        await rig.leadership.round()
    given = b.leadership.led()[0]
    await b.leadership._release(given)
    acquire = store.acquire_lease

    async def answer_lost(trigger: str, *args: Any, **kwargs: Any) -> TriggerLease | None:
        await acquire(trigger, *args, **kwargs)
        raise StoreError("server closed the connection unexpectedly")

    monkeypatch.setattr(store, "acquire_lease", answer_lost)
    with pytest.raises(StoreError):
        await a.leadership._acquire(given)
    monkeypatch.setattr(store, "acquire_lease", acquire)
    await a.leadership.round()  # recovered: its own lease, taken under the next epoch
    assert given in a.leadership.led()
    recovered = await lease_of(store, given)
    # Killed right after (no hand-over), then started again under its name.
    await stop(a)
    restarted = replica(store, "a", TRIGGERS)
    try:
        with capture_logs() as logs:
            await restarted.leadership.round()
            await b.leadership.round()
        assert sorted(restarted.leadership.led() + b.leadership.led()) == list(TRIGGERS)
        assert [e for e in logs if e["event"] == "replica_name_shared"] == []
        assert restarted.leadership.not_ready_reasons() == []
        # The process before the restart is fenced out of the trigger it recovered.
        assert (await lease_of(store, given)).epoch > recovered.epoch
        with pytest.raises(LeaseLostError):
            await a.sources[given].write(7)
    finally:
        await stop(restarted, b)
