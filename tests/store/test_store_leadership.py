"""What every store engine must do for leadership: one holder per trigger lease, a new epoch
per new holder, and fenced writes refused (writing nothing) once the lease is lost.

A lease given for no time at all has run out as soon as it is taken, and one given for an
hour runs all through a test: so expiry is tested without waiting on any clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from sftriggerd.store.base import Store
from sftriggerd.store.leadership import Fence, LeaseLostError
from sftriggerd.store.records import PoisonEvent
from tests.store.test_store_contract import T0, checkpoint, event

HOUR = timedelta(hours=1)
GONE = timedelta(0)  # runs out the moment it is taken


async def test_a_free_lease_goes_to_the_first_replica_only(store: Store) -> None:
    lease = await store.acquire_lease("t", "a", HOUR)
    assert lease is not None
    assert (lease.holder, lease.epoch, lease.live, lease.previous_ended_at) == ("a", 1, True, None)
    assert await store.acquire_lease("t", "b", HOUR) is None
    [seen] = await store.leases()
    assert (seen.trigger, seen.holder, seen.epoch, seen.live) == ("t", "a", 1, True)


async def test_a_lease_that_ran_out_goes_to_the_next_holder_with_the_next_epoch(
    store: Store,
) -> None:
    first = await store.acquire_lease("t", "a", GONE)
    assert first is not None
    [seen] = await store.leases()
    assert not seen.live
    second = await store.acquire_lease("t", "b", HOUR)
    assert second is not None
    assert (second.holder, second.epoch) == ("b", 2)
    assert second.previous_ended_at == first.expires_at
    assert second.acquired_at >= first.expires_at


async def test_only_the_holder_with_its_epoch_renews(store: Store) -> None:
    lease = await store.acquire_lease("t", "a", timedelta(minutes=1))
    assert lease is not None
    assert await store.renew_leases("b", {"t": 1}, HOUR) == []
    assert await store.renew_leases("a", {"t": 2}, HOUR) == []
    [renewed] = await store.renew_leases("a", {"t": 1}, HOUR)
    assert (renewed.holder, renewed.epoch, renewed.live) == ("a", 1, True)
    assert renewed.expires_at > lease.expires_at


async def test_a_lease_that_ran_out_is_not_renewed(store: Store) -> None:
    await store.acquire_lease("t", "a", GONE)
    assert await store.renew_leases("a", {"t": 1}, HOUR) == []
    assert await store.renew_leases("a", {"unknown": 1}, HOUR) == []


async def test_renewal_covers_every_lease_held_and_skips_the_lost(store: Store) -> None:
    for trigger in ("t1", "t2", "t3"):
        assert await store.acquire_lease(trigger, "a", HOUR) is not None
    assert await store.release_lease("t2", Fence("a", 1))
    renewed = await store.renew_leases("a", {"t1": 1, "t2": 1, "t3": 1}, HOUR)
    assert sorted(lease.trigger for lease in renewed) == ["t1", "t3"]


async def test_a_released_lease_is_taken_over_at_once(store: Store) -> None:
    await store.acquire_lease("t", "a", HOUR)
    assert not await store.release_lease("t", Fence("b", 1))
    assert not await store.release_lease("t", Fence("a", 2))
    assert await store.release_lease("t", Fence("a", 1))
    taken = await store.acquire_lease("t", "b", HOUR)
    assert taken is not None and (taken.holder, taken.epoch) == ("b", 2)
    assert taken.previous_ended_at is not None and taken.previous_ended_at <= taken.acquired_at
    assert not await store.release_lease("t", Fence("a", 1))


async def test_a_restarted_replica_of_the_same_name_takes_its_lease_with_a_new_epoch(
    store: Store,
) -> None:
    await store.acquire_lease("t", "a", HOUR)
    again = await store.acquire_lease("t", "a", HOUR)
    assert again is not None and again.epoch == 2
    assert await store.renew_leases("a", {"t": 1}, HOUR) == []  # the earlier process: out


async def test_fenced_ingest_by_the_holder_moves_the_checkpoint(store: Store) -> None:
    await store.acquire_lease("t", "a", HOUR)
    result = await store.ingest("t", [event(1)], checkpoint(1), fence=Fence("a", 1))
    assert result.new_events == 1
    saved = await store.checkpoint("t")
    assert saved is not None and saved.position == {"replay_id": 1}


async def _taken_over(store: Store) -> None:
    await store.acquire_lease("t", "a", GONE)
    await store.acquire_lease("t", "b", HOUR)


async def _ran_out(store: Store) -> None:
    await store.acquire_lease("t", "a", GONE)


async def _held_by_a(store: Store) -> None:
    await store.acquire_lease("t", "a", HOUR)


@pytest.mark.parametrize(
    ("setup", "fence"),
    [
        (_taken_over, Fence("a", 1)),  # a paused ex-leader, woken after the takeover
        (_ran_out, Fence("a", 1)),  # its lease ran out, nobody took it yet
        (_held_by_a, Fence("b", 1)),  # another replica's epoch number
        (_held_by_a, Fence("a", 0)),  # a replica that never held it, under the holder's name
    ],
    ids=["taken-over", "ran-out", "other-replica", "never-held"],
)
async def test_fenced_ingest_without_the_lease_is_refused_and_writes_nothing(
    store: Store, setup: Callable[[Store], Awaitable[None]], fence: Fence
) -> None:
    await store.ingest("t", [event(1)], checkpoint(1))
    await setup(store)
    poison = [PoisonEvent(trigger="t", reason="bad", message="{}")]
    with pytest.raises(LeaseLostError) as refused:
        await store.ingest("t", [event(2), event(3)], checkpoint(3), poison, fence=fence)
    assert refused.value.trigger == "t" and refused.value.fence == fence
    saved = await store.checkpoint("t")
    assert saved is not None and saved.position == {"replay_id": 1}
    assert [row.event_id for row in await store.list_deliveries()] == ["evt_1"]
    assert await store.list_poison() == []
    # The same events, fenced with the lease that holds, go in: nothing half-written before.
    holder = {lease.trigger: lease for lease in await store.leases()}["t"]
    if holder.live:
        result = await store.ingest("t", [event(2), event(3)], checkpoint(3), fence=holder.fence)
        assert (result.new_events, result.duplicate_events) == (2, 0)


async def test_fenced_ingest_of_a_trigger_never_leased_is_refused(store: Store) -> None:
    with pytest.raises(LeaseLostError):
        await store.ingest("t", [event(1)], checkpoint(1), fence=Fence("a", 1))
    assert await store.checkpoint("t") is None
    assert await store.list_deliveries() == []


async def test_unfenced_ingest_ignores_leases(store: Store) -> None:
    await store.acquire_lease("t", "a", HOUR)
    result = await store.ingest("t", [event(1)], checkpoint(1))
    assert result.new_events == 1


async def test_fenced_rewind_needs_the_lease(store: Store) -> None:
    await store.ingest("t", [event(5)], checkpoint(5))
    await store.acquire_lease("t", "a", GONE)
    await store.acquire_lease("t", "b", HOUR)
    with pytest.raises(LeaseLostError):
        await store.rewind("t", checkpoint(1), fence=Fence("a", 1))
    saved = await store.checkpoint("t")
    assert saved is not None and saved.position == {"replay_id": 5}
    await store.rewind("t", checkpoint(2), fence=Fence("b", 2))
    saved = await store.checkpoint("t")
    assert saved is not None and saved.position == {"replay_id": 2}
    assert saved.event_time == T0 + timedelta(seconds=2)


async def test_replicas_are_known_by_their_heartbeats_and_forgotten_when_retired(
    store: Store,
) -> None:
    await store.heartbeat("a", HOUR)
    await store.heartbeat("b", HOUR)
    first = {replica.name: replica for replica in await store.replicas()}
    assert sorted(first) == ["a", "b"]
    await store.heartbeat("a", HOUR)
    again = {replica.name: replica for replica in await store.replicas(seen_within=HOUR)}
    assert again["a"].started_at == first["a"].started_at
    assert again["a"].heartbeat_at >= first["a"].heartbeat_at
    assert await store.replicas(seen_within=timedelta(seconds=-1)) == []
    await store.retire_replica("a")
    assert [replica.name for replica in await store.replicas()] == ["b"]


async def test_a_heartbeat_forgets_replicas_silent_too_long(store: Store) -> None:
    await store.heartbeat("old", HOUR)
    await store.heartbeat("new", timedelta(seconds=-1))  # everyone before now is too old
    assert [replica.name for replica in await store.replicas()] == ["new"]


async def test_a_lease_given_for_no_time_is_taken_already_run_out(store: Store) -> None:
    lease = await store.acquire_lease("t", "a", GONE)
    assert lease is not None and not lease.live and lease.expires_at == lease.acquired_at
