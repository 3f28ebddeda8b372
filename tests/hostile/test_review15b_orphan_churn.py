"""Review of issue 15 (second round): "a trigger left free for two whole rounds is taken
whatever the share, so none is left unread should a replica count as live yet take nothing"
(docs/operations.md, Leadership). The replica that takes such an orphan is then over its share,
and its very next round sheds it again (`sorted(held)[share:]`): the orphan is released,
counted free from zero, taken again two rounds later, shed again, for as long as the other
replica counts as live. The trigger is read one round in four, its source restarted each
time; with `ha.wake_ups: notify` the release's own notification runs the shedding replica's
next round at once. A replica counts as live yet takes nothing whenever its rounds fail after
their heartbeat (a store slow or failing on the leases), or it runs a configuration without
the trigger (a rolling update that adds one, a canary): the second is shown end to end too."""

from __future__ import annotations

from datetime import timedelta

from sftriggerd.store.base import Store
from tests.leadership.replicas import ReplicaRig, replica
from tests.support.waiting import eventually

ROUNDS = 12


async def stop(*rigs: ReplicaRig) -> None:
    """Stops the rigs' running sources (leases left as they are)."""
    for rig in rigs:
        for held in rig.leadership._held.values():
            if held.stopping is not None:
                held.stopping.set()
    for rig in rigs:
        await eventually(lambda rig=rig: rig.running() == [])


async def test_review15b_an_orphan_taken_stays_taken_beside_a_replica_that_takes_nothing(
    store: Store,
) -> None:
    # "b" heartbeats each round and takes nothing (its rounds fail after the heartbeat).
    a = replica(store, "a", ("t1", "t2", "t3"))
    led: list[bool] = []
    try:
        for _ in range(ROUNDS):
            await store.heartbeat("b", timedelta(minutes=30))
            await a.leadership.round()
            led.append("t3" in a.leadership.led())
        taken = led.index(True)
        # Taken once orphaned, it is then led at every round after.
        assert led[taken:] == [True] * (ROUNDS - taken), f"t3 led per round: {led}"
        assert a.changes("t3", "released") == 0
    finally:
        await stop(a)


async def test_review15b_a_trigger_only_one_replica_runs_stays_led(store: Store) -> None:
    old_a, old_b = replica(store, "a", ("t1", "t2")), replica(store, "b", ("t1", "t2"))
    new = replica(store, "c", ("t1", "t2", "t3", "t4", "t5"))  # the first pod of a rollout
    led: list[bool] = []
    try:
        for _ in range(ROUNDS):
            for rig in (old_a, old_b, new):
                await rig.leadership.round()
            led.append("t5" in new.leadership.led())
        taken = led.index(True)
        assert led[taken:] == [True] * (ROUNDS - taken), f"t5 led per round: {led}"
        assert new.changes("t5", "released") == 0
    finally:
        await stop(old_a, old_b, new)
