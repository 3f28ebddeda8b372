"""Several engines on one PostgreSQL database, as replicas of the daemon run: claims,
ingests and wake-ups across them."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from sftriggerd.store.leadership import Fence
from sftriggerd.store.postgres import PostgresStore, WakeUp
from sftriggerd.store.records import Claim, Delivered
from sftriggerd.store.wake_ups import LeaseReleased

from .test_store_contract import checkpoint, event

LEASE = timedelta(seconds=60)
REPLICAS = 4


@pytest.fixture
async def replicas(postgres_url: str) -> AsyncIterator[list[PostgresStore]]:
    stores = [PostgresStore(postgres_url) for _ in range(REPLICAS)]
    for store in stores:
        await store.open()
    try:
        yield stores
    finally:
        for store in stores:
            await store.close()


async def drain(store: PostgresStore, taken: list[Claim], in_flight: Counter[str]) -> None:
    """Claims small batches until nothing is due, answering each; notes every claim, and
    fails when one record is in flight twice at once (across every replica)."""
    while claims := await store.claim_due("hook", 3, LEASE):
        keys = [claim.body.decode() for claim in claims]
        for key in keys:
            in_flight[key] += 1
            assert in_flight[key] == 1, f"record {key} is in flight twice"
        taken.extend(claims)
        await asyncio.sleep(0)  # let the other replicas claim while these are out
        for key in keys:
            in_flight[key] -= 1
        assert all(await store.record_outcomes([(c, Delivered(200)) for c in claims]))


async def test_replicas_claiming_at_once_never_take_the_same_delivery(
    replicas: list[PostgresStore],
) -> None:
    await replicas[0].ingest("t", [event(n, record=f"r{n}") for n in range(300)], checkpoint(1))
    taken: list[Claim] = []
    await asyncio.gather(*(drain(store, taken, Counter()) for store in replicas))
    assert sorted(claim.event_id for claim in taken) == sorted(f"evt_{n}" for n in range(300))
    counts = await replicas[0].outbox_counts()
    assert "hook" not in counts  # nothing open, nothing dead


async def test_replicas_send_each_records_changes_one_at_a_time_oldest_first(
    replicas: list[PostgresStore],
) -> None:
    # 8 records, 20 changes each; the body names the record (see drain).
    events = [event(n, record=f"r{n % 8}") for n in range(160)]
    events = [
        type(e)(
            event_id=e.event_id,
            record_id=e.record_id,
            occurred_at=e.occurred_at,
            body=str(e.record_id).encode(),
            endpoints=e.endpoints,
            ordered_endpoints=e.ordered_endpoints,
            order_key=e.order_key,
        )
        for e in events
    ]
    await replicas[0].ingest("t", events, checkpoint(1))
    taken: list[Claim] = []
    in_flight: Counter[str] = Counter()
    await asyncio.gather(*(drain(store, taken, in_flight) for store in replicas))
    assert len(taken) == 160
    for record in range(8):
        sent = [c.event_id for c in taken if c.body == f"r{record}".encode()]
        assert sent == [f"evt_{n}" for n in range(record, 160, 8)]


async def test_the_same_events_ingested_by_replicas_at_once_are_stored_once(
    replicas: list[PostgresStore],
) -> None:
    events = [event(n, record=f"r{n % 5}", endpoints=("a", "b")) for n in range(50)]
    results = await asyncio.gather(
        *(store.ingest("t", events, checkpoint(50)) for store in replicas for _ in range(2))
    )
    assert sum(r.new_events for r in results) == 50
    assert sum(r.duplicate_events for r in results) == 50 * (2 * REPLICAS - 1)
    assert sum(r.deliveries for r in results) == 100
    counts = await replicas[0].outbox_counts()
    assert (counts["a"].pending, counts["b"].pending) == (50, 50)


async def test_an_ingest_wakes_every_replica_with_its_endpoints(
    replicas: list[PostgresStore],
) -> None:
    listening = replicas[1].wake_ups()
    try:
        # The first wake-up says the listener is on: anything before it may have been missed.
        assert await anext(listening) == WakeUp(endpoint=None)
        await replicas[0].ingest("t", [event(1, endpoints=("a", "b"))], checkpoint(1))
        woken = {await anext(listening), await anext(listening)}
        assert woken == {WakeUp("a"), WakeUp("b")}
        await replicas[2].ingest("t", [event(1, endpoints=("a", "b"))], checkpoint(1))  # dup
        [claim] = await replicas[0].claim_due("a", 1, LEASE)
        await replicas[0].release([claim])
        assert await anext(listening) == WakeUp("a")  # the duplicate woke nobody
    finally:
        await listening.aclose()


async def test_a_released_lease_is_heard_and_a_lease_run_out_or_refused_is_not(
    replicas: list[PostgresStore],
) -> None:
    listening = replicas[1].wake_ups()
    try:
        assert await anext(listening) == WakeUp(endpoint=None)
        lease = await replicas[0].acquire_lease("t", "r0", LEASE)
        assert lease is not None
        assert not await replicas[0].release_lease("t", Fence("r0", lease.epoch + 1))
        assert await replicas[0].release_lease("t", lease.fence)
        assert not await replicas[0].release_lease("t", lease.fence)  # released already
        await replicas[0].ingest("t", [event(1, endpoints=("a",))], checkpoint(1))
        # Only the one release, in its order among the other notifications.
        assert [await anext(listening), await anext(listening)] == [
            LeaseReleased("t"),
            WakeUp("a"),
        ]
    finally:
        await listening.aclose()
