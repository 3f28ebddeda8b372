"""Two processes run under one `ha.replica_name` on one store (a configuration mistake): the
first round of each may take a live lease under its name (a restarted process taking over its
crashed predecessor's at once), but after that each leaves the other's lease alone, so the
lease stops changing hands; the mistake is logged once and makes the idle twin not ready."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from sftriggerd.store.base import Store
from sftriggerd.store.leadership import LeaseLostError
from tests.leadership.replicas import ReplicaRig, position, replica, run_out
from tests.support.clock import ShiftedClock
from tests.support.waiting import eventually

TRIGGERS = ("t1", "t2")


async def epochs(store: Store) -> dict[str, tuple[str, int]]:
    return {lease.trigger: (lease.holder, lease.epoch) for lease in await store.leases()}


async def rounds(*twins: ReplicaRig, times: int) -> None:
    for _ in range(times):
        for twin in twins:
            await twin.leadership.round()


async def settled_twins(store: Store) -> tuple[ReplicaRig, ReplicaRig]:
    """Two processes named "a", each past its first rounds; returns (leader, idle)."""
    first, second = replica(store, "a", TRIGGERS), replica(store, "a", TRIGGERS)
    await rounds(first, second, times=2)
    settled = await epochs(store)
    await rounds(first, second, times=5)
    assert await epochs(store) == settled  # no longer changing hands
    return (first, second) if first.leadership.led() else (second, first)


async def test_twins_under_one_name_stop_taking_the_lease_from_each_other(store: Store) -> None:
    with capture_logs() as logs:
        leader, idle = await settled_twins(store)
    assert leader.leadership.led() == list(TRIGGERS) and idle.leadership.led() == []
    await eventually(lambda: leader.running() == list(TRIGGERS))
    assert idle.running() == []
    # Only the lease's holder writes: the twin's fence is refused.
    await leader.sources["t1"].write(1)
    with pytest.raises(LeaseLostError):
        await idle.sources["t1"].write(2)
    assert await position(store, "t1") == 1
    said = [e for e in logs if e["event"] == "replica_name_shared"]
    assert sorted(e["trigger"] for e in said) == list(TRIGGERS)  # once per trigger
    assert all(e["log_level"] == "error" and "ha.replica_name" in e["fix"] for e in said)
    [reason] = idle.leadership.not_ready_reasons()
    assert "another process runs as replica a" in reason and "t1, t2" in reason
    assert leader.leadership.not_ready_reasons() == []


async def test_the_twin_takes_over_when_the_leader_dies(store: Store, clock: ShiftedClock) -> None:
    leader, idle = await settled_twins(store)
    held = await epochs(store)
    # Killed: no hand-over. Its leases run out; the twin's next round takes them.
    await run_out(store, clock, "t1")
    await idle.leadership.round()
    assert idle.leadership.led() == list(TRIGGERS)
    assert await epochs(store) == {t: ("a", epoch + 1) for t, (_, epoch) in held.items()}
    await eventually(lambda: idle.running() == list(TRIGGERS))
    await idle.sources["t1"].write(3)
    with pytest.raises(LeaseLostError):
        await leader.sources["t1"].write(4)
    assert await position(store, "t1") == 3
    assert idle.leadership.not_ready_reasons() == []  # the name is its own again
    # The next rounds leave it where it is.
    taken = await epochs(store)
    await rounds(idle, times=3)
    assert await epochs(store) == taken


async def test_the_twin_takes_over_at_its_next_round_after_a_hand_over(store: Store) -> None:
    leader, idle = await settled_twins(store)
    await leader.leadership.hand_over()
    await idle.leadership.round()
    assert idle.leadership.led() == list(TRIGGERS)
    await eventually(lambda: idle.running() == list(TRIGGERS))
    assert leader.running() == []
