"""Review of issue 15 (second round): a process takes a live lease under its own
`ha.replica_name` only in its first round; after that it takes such a lease for a twin (another
running process of the name), leaves it, logs `replica_name_shared` and says it is not ready.
But an own-name lease this process does not hold is not always a twin's:

- a lease this very process acquired whose answer was lost (the connection dropped after the
  commit, or the round's `wait_for` ran out while `acquire_lease` was in flight);
- a lease its crashed predecessor held beyond the restarted process's fair share, which the
  first round skips (share reached) and every later round then refuses as a twin's.

Either way nobody leads the trigger until the lease runs out (`ha.takeover`: nobody renews
it, yet no other replica may take it, being live), the only process of the name logs an
error about a twin that does not exist, and its readiness fails meanwhile. On every engine,
with real `Leadership` loops and sources writing through a fenced `Ingest`."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from sftriggerd.errors import StoreError
from sftriggerd.store.base import Store
from sftriggerd.store.leadership import TriggerLease
from tests.leadership.replicas import ReplicaRig, replica
from tests.support.waiting import eventually

TRIGGERS = ("t1", "t2", "t3", "t4")


async def holders(store: Store) -> dict[str, tuple[str, bool]]:
    return {lease.trigger: (lease.holder, lease.live) for lease in await store.leases()}


async def stop(*rigs: ReplicaRig) -> None:
    """Stops the rigs' running sources (no lease released: as a kill would leave them)."""
    for rig in rigs:
        for held in rig.leadership._held.values():
            if held.stopping is not None:
                held.stopping.set()
    for rig in rigs:
        await eventually(lambda rig=rig: rig.running() == [])


async def test_review15b_a_lost_acquire_answer_is_not_a_twin(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "b" leads t1, t2; "a" past its first round leads t3, t4 (two replicas, share 2).
    b = replica(store, "b", TRIGGERS)
    await b.leadership.round()
    a = replica(store, "a", TRIGGERS)
    await a.leadership.round()
    await b.leadership.round()  # b sheds down to its share
    await a.leadership.round()
    assert sorted(b.leadership.led() + a.leadership.led()) == list(TRIGGERS)
    given = b.leadership.led()[0]
    # b gives one trigger up (a hand-over of one, as a shed does); a's next round takes it,
    # the commit goes through, and the answer is lost on the way back.
    await b.leadership._release(given)
    acquire = store.acquire_lease
    lost: list[str] = []

    async def answer_lost(trigger: str, *args: Any, **kwargs: Any) -> TriggerLease | None:
        lease = await acquire(trigger, *args, **kwargs)
        if lease is not None and not lost:
            lost.append(trigger)
            raise StoreError("server closed the connection unexpectedly")
        return lease

    monkeypatch.setattr(store, "acquire_lease", answer_lost)
    with pytest.raises(StoreError):
        await a.leadership._acquire(given)  # the round's own step, as `round()` runs it
    assert lost == [given] and (await holders(store))[given] == ("a", True)
    with capture_logs() as logs:
        await a.leadership.round()
        await b.leadership.round()
    try:
        # The lease is a's own: its next round should lead (and run) the trigger at once.
        assert [e for e in logs if e["event"] == "replica_name_shared"] == []
        assert a.leadership.not_ready_reasons() == []
        assert given in a.leadership.led()
    finally:
        await stop(a, b)


async def test_review15b_a_restart_over_its_share_is_not_a_twin(store: Store) -> None:
    # "a" alone leads all four triggers, then is killed (no hand-over) while "b" runs.
    crashed = replica(store, "a", TRIGGERS)
    await crashed.leadership.round()
    assert crashed.leadership.led() == list(TRIGGERS)
    b = replica(store, "b", TRIGGERS)
    await b.leadership.round()
    await stop(crashed)
    # "a" restarts under the same name (a StatefulSet pod, a systemd unit): share is 2.
    restarted = replica(store, "a", TRIGGERS)
    with capture_logs() as logs:
        for _ in range(3):  # a few rounds each, well inside the lease's 90 s
            await restarted.leadership.round()
            await b.leadership.round()
    try:
        led = sorted(restarted.leadership.led() + b.leadership.led())
        # Every trigger of the crashed process led again without waiting for its lease.
        assert led == list(TRIGGERS), f"unled meanwhile: {sorted(set(TRIGGERS) - set(led))}"
        assert [e for e in logs if e["event"] == "replica_name_shared"] == []
        assert restarted.leadership.not_ready_reasons() == []
    finally:
        await stop(restarted, b)
