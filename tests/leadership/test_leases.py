"""Leadership between replicas on one real store: one source per trigger, takeovers when a
leader dies, hand-over on shutdown, fair spreading, and fenced writes from a lost lease."""

from __future__ import annotations

import pytest

from sftriggerd.store.base import Store
from sftriggerd.store.leadership import Fence, LeaseLostError
from tests.leadership.replicas import position, replica, run_out
from tests.support.clock import ShiftedClock
from tests.support.waiting import eventually


async def test_two_replicas_one_holder_one_running_source(store: Store) -> None:
    a, b = replica(store, "a"), replica(store, "b")
    await a.leadership.round()
    await b.leadership.round()
    await a.leadership.round()
    assert (a.leadership.led(), b.leadership.led()) == (["t"], [])
    await eventually(lambda: a.running() == ["t"])
    assert b.running() == []
    assert a.leadership.leader_of("t") == b.leadership.leader_of("t") == "a"
    [lease] = await store.leases()
    assert (lease.holder, lease.epoch) == ("a", 1)


async def test_a_dead_leaders_trigger_is_taken_at_the_first_round_after_its_lease(
    store: Store, clock: ShiftedClock
) -> None:
    a, b = replica(store, "a"), replica(store, "b")
    await a.leadership.round()
    await b.leadership.round()
    # "a" dies: it renews no more. While its lease runs, "b" leaves the trigger alone.
    for _ in range(3):
        await b.leadership.round()
    assert b.leadership.led() == []
    await run_out(store, clock)
    await b.leadership.round()
    assert b.leadership.led() == ["t"]
    await eventually(lambda: b.running() == ["t"])
    [lease] = await store.leases()
    assert (lease.holder, lease.epoch) == ("b", 2)
    assert b.changes("t", "acquired") == 1 and b.takeovers() == 1
    # Its first round since: "a" finds its lease gone, stops its source, counts the loss.
    await a.leadership.round()
    assert a.leadership.led() == [] and a.running() == []
    assert a.changes("t", "lost") == 1


async def test_a_paused_ex_leader_cannot_move_the_checkpoint(
    store: Store, clock: ShiftedClock
) -> None:
    a, b = replica(store, "a"), replica(store, "b")
    await a.leadership.round()
    await a.sources["t"].write(1)
    assert await position(store) == 1
    # "a" freezes past its lease (no rounds); "b" takes over and moves on.
    await run_out(store, clock)
    await b.leadership.round()
    await b.sources["t"].write(2)
    # "a" wakes, still believing it leads, and writes: refused, nothing written.
    assert a.leadership.leads("t")
    with pytest.raises(LeaseLostError):
        await a.sources["t"].write(99)
    assert await position(store) == 2
    assert a.leadership.fence_for("t") == Fence("a", 1)


async def test_a_replica_that_never_led_writes_nothing(store: Store) -> None:
    a, b = replica(store, "a"), replica(store, "b")
    await a.leadership.round()
    assert b.leadership.fence_for("t") == Fence("b", 0)
    with pytest.raises(LeaseLostError):
        await b.sources["t"].write(5)
    assert await position(store) is None


async def test_shutdown_hands_the_lease_over_at_once(store: Store) -> None:
    a, b = replica(store, "a"), replica(store, "b")
    await a.leadership.round()
    await b.leadership.round()
    await eventually(lambda: a.running() == ["t"])
    await a.leadership.hand_over()
    assert a.running() == [] and a.changes("t", "released") == 1
    assert [r.name for r in await store.replicas()] == ["b"]
    # No waiting for the lease to run out: "b"'s next round takes it.
    await b.leadership.round()
    assert b.leadership.led() == ["t"]
    [lease] = await store.leases()
    assert (lease.holder, lease.epoch, lease.live) == ("b", 2, True)
    with pytest.raises(LeaseLostError):
        await a.sources["t"].write(1)


async def test_four_triggers_spread_two_and_two(store: Store) -> None:
    triggers = ("t1", "t2", "t3", "t4")
    a, b = replica(store, "a", triggers), replica(store, "b", triggers)
    await a.leadership.round()  # alone: it takes all four
    assert a.leadership.led() == list(triggers)
    await b.leadership.round()  # two live replicas: a share of two, none free yet
    await a.leadership.round()  # over its share: gives two up at once
    await b.leadership.round()
    assert len(a.leadership.led()) == len(b.leadership.led()) == 2
    assert sorted(a.leadership.led() + b.leadership.led()) == list(triggers)
    for _ in range(3):  # and it stays so
        await a.leadership.round()
        await b.leadership.round()
    assert len(a.leadership.led()) == len(b.leadership.led()) == 2
    await eventually(lambda: len(a.running()) == len(b.running()) == 2)
    assert set(a.running()).isdisjoint(b.running())
    assert sum(a.changes(t, "released") for t in triggers) == 2


async def test_replicas_starting_together_spread_too(store: Store) -> None:
    triggers = ("t1", "t2", "t3", "t4")
    a, b = replica(store, "a", triggers), replica(store, "b", triggers)
    await store.heartbeat("b", a.leadership.timing.takeover)  # "b" is up, has not led yet
    await a.leadership.round()
    await b.leadership.round()
    assert len(a.leadership.led()) == len(b.leadership.led()) == 2


async def test_restart_after_a_takeover_then_quiet_then_the_next_takeover(
    store: Store, clock: ShiftedClock
) -> None:
    a, b = replica(store, "a"), replica(store, "b")
    await a.leadership.round()
    await a.sources["t"].write(1)
    await run_out(store, clock)
    await b.leadership.round()  # takeover: "b" leads, epoch 2
    await b.sources["t"].write(2)
    # "a" restarts right after: a new process under the same name, nothing in memory.
    await a.leadership.hand_over()
    a = replica(store, "a")
    for _ in range(5):  # a quiet period: rounds on both, nothing changes hands
        await a.leadership.round()
        await b.leadership.round()
    assert (a.leadership.led(), b.leadership.led()) == ([], ["t"])
    [lease] = await store.leases()
    assert (lease.holder, lease.epoch) == ("b", 2)
    assert b.changes("t", "acquired") == 1 and b.changes("t", "lost") == 0
    await b.sources["t"].write(3)
    # "b" dies in turn: the restarted "a" takes over with the next epoch.
    await run_out(store, clock)
    await a.leadership.round()
    [lease] = await store.leases()
    assert (lease.holder, lease.epoch) == ("a", 3)
    await a.sources["t"].write(4)
    with pytest.raises(LeaseLostError):
        await b.sources["t"].write(5)
    assert await position(store) == 4


async def test_a_lone_replica_leads_every_trigger(store: Store) -> None:
    only = replica(store, "only", ("t1", "t2", "t3"))
    await only.leadership.round()
    assert only.leadership.led() == ["t1", "t2", "t3"]
    await eventually(lambda: only.running() == ["t1", "t2", "t3"])
    for trigger in ("t1", "t2", "t3"):
        assert only.sources[trigger].rebuilds == 1  # started afresh, from the store
        await only.sources[trigger].write(1)


async def test_a_process_restarted_under_the_same_name_takes_its_leases_at_once(
    store: Store,
) -> None:
    before = replica(store, "a", ("t1", "t2"))
    await before.leadership.round()
    await before.sources["t1"].write(1)
    # Killed: no hand-over. The next process of the same name does not wait for the leases
    # to run out; it takes them with the next epoch, which fences its predecessor out.
    after = replica(store, "a", ("t1", "t2"))
    await after.leadership.round()
    assert after.leadership.led() == ["t1", "t2"]
    assert [(x.holder, x.epoch) for x in await store.leases()] == [("a", 2), ("a", 2)]
    with pytest.raises(LeaseLostError):
        await before.sources["t1"].write(9)
    await after.sources["t1"].write(2)
    assert await position(store, "t1") == 2


async def test_ready_after_the_first_round_and_then_as_the_led_sources_are(store: Store) -> None:
    a, b = replica(store, "a"), replica(store, "b")
    assert a.leadership.not_ready_reasons() and b.leadership.not_ready_reasons()
    await a.leadership.round()
    await b.leadership.round()
    assert b.leadership.not_ready_reasons() == []  # a follower delivers and stands by
    a.sources["t"].not_ready_reasons = lambda: ["streaming:t: not subscribed yet"]  # type: ignore[method-assign]
    assert a.leadership.not_ready_reasons() == ["streaming:t: not subscribed yet"]
