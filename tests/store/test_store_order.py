"""Per-record order with redrives, and leases that a stale claimer cannot give back."""

from __future__ import annotations

from datetime import timedelta

from sftriggerd.store.base import Store
from sftriggerd.store.records import Dead, Delivered
from tests.store.test_store_contract import LEASE, checkpoint, event
from tests.support.clock import ShiftedClock


async def dead_ids(store: Store) -> list[int]:
    return [row.id for row in await store.list_deliveries(status="dead")]


async def test_a_redriven_older_change_waits_for_the_newer_one_in_flight(store: Store) -> None:
    await store.ingest("t", [event(1, "A"), event(2, "A")], checkpoint(2))
    [first] = await store.claim_due("hook", 10, LEASE)
    await store.record_outcome(first, Dead(status=410, error="HTTP 410 Gone"))
    [newer] = await store.claim_due("hook", 10, LEASE)
    assert newer.event_id == "evt_2"
    [dead_id] = await dead_ids(store)
    assert await store.redrive(dead_id)
    # Another record's change is claimable (the positive signal); the redriven one is not.
    await store.ingest("t", [event(3, "B")], checkpoint(3))
    assert [c.event_id for c in await store.claim_due("hook", 10, LEASE)] == ["evt_3"]
    assert await store.record_outcome(newer, Delivered(status=200))
    [again] = await store.claim_due("hook", 10, LEASE)
    assert again.event_id == "evt_1" and again.attempts == 0


async def test_a_redriven_change_past_the_oldest_due_ones_waits_too(store: Store) -> None:
    """The claim's second path (all of the oldest due are held back, so it looks further)
    keeps the same rule."""
    records = ["C", "C", "A", "A", "B"]
    await store.ingest("t", [event(n, r) for n, r in enumerate(records, 1)], checkpoint(5))
    c1, a3, b5 = await store.claim_due("hook", 10, LEASE)
    await store.record_outcome(b5, Delivered(status=200))
    await store.record_outcome(a3, Dead(status=410, error="gone"))
    [a4] = await store.claim_due("hook", 10, LEASE)
    assert (c1.event_id, a4.event_id) == ("evt_1", "evt_4")
    [dead_id] = await dead_ids(store)
    assert await store.redrive(dead_id)
    await store.ingest("t", [event(6, "D")], checkpoint(6))
    # Oldest due: evt_2 (C in flight), then evt_3 (A in flight), then evt_6.
    assert [c.event_id for c in await store.claim_due("hook", 1, LEASE)] == ["evt_6"]


async def test_a_record_never_has_two_deliveries_in_flight_after_a_redrive_of_many(
    store: Store,
) -> None:
    events = [event(n, "A") for n in range(1, 5)]
    await store.ingest("t", events, checkpoint(4))
    for _ in range(3):
        [claim] = await store.claim_due("hook", 10, LEASE)
        await store.record_outcome(claim, Dead(status=500, error="max age"))
    [fourth] = await store.claim_due("hook", 10, LEASE)
    assert fourth.event_id == "evt_4"
    assert await store.redrive_endpoint("hook") == 3
    assert await store.claim_due("hook", 10, LEASE) == []
    await store.record_outcome(fourth, Delivered(status=200))
    sent = []
    for _ in range(3):
        claims = await store.claim_due("hook", 10, LEASE)
        assert len(claims) == 1
        sent.append(claims[0].event_id)
        await store.record_outcome(claims[0], Delivered(status=200))
    # Lowest open id first: the redriven changes go out oldest first.
    assert sent == ["evt_1", "evt_2", "evt_3"]


async def test_a_lapsed_lease_does_not_hold_a_redriven_change_back(
    store: Store, clock: ShiftedClock
) -> None:
    await store.ingest("t", [event(1, "A"), event(2, "A")], checkpoint(2))
    [first] = await store.claim_due("hook", 10, LEASE)
    await store.record_outcome(first, Dead(status=410, error="gone"))
    [newer] = await store.claim_due("hook", 10, LEASE)
    [dead_id] = await dead_ids(store)
    await store.redrive(dead_id)
    clock.advance(LEASE + timedelta(seconds=1))  # the newer one's claimer died
    [oldest] = await store.claim_due("hook", 10, LEASE)
    assert oldest.event_id == "evt_1"
    # The oldest is in flight now, so the newer one waits although its lease ran out.
    await store.ingest("t", [event(3, "B")], checkpoint(3))
    assert [c.event_id for c in await store.claim_due("hook", 10, LEASE)] == ["evt_3"]
    assert await store.record_outcome(oldest, Delivered(status=200))
    [retaken] = await store.claim_due("hook", 10, LEASE)
    assert retaken.event_id == "evt_2" and retaken.lease_token != newer.lease_token


async def test_a_stale_claimers_release_does_not_release_a_newer_claim(
    store: Store, clock: ShiftedClock
) -> None:
    await store.ingest("t", [event(1)], checkpoint(1))
    [stale] = await store.claim_due("hook", 1, LEASE)
    clock.advance(LEASE + timedelta(seconds=1))
    [fresh] = await store.claim_due("hook", 1, LEASE)
    assert fresh.delivery_id == stale.delivery_id
    await store.release([stale])  # e.g. the stale claimer shuts down late
    # The newer claim still holds the delivery: nobody else can claim it, and its outcome counts.
    assert await store.claim_due("hook", 1, LEASE) == []
    assert await store.record_outcome(fresh, Delivered(status=200))
    [row] = await store.list_deliveries()
    assert (row.status, row.attempts) == ("delivered", 1)
