"""`Store.expire_overdue`: deliveries past max_age go dead without an attempt, whatever holds
them back (an open breaker, an older change of their record); a live lease is left alone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sftriggerd.store.base import Store
from sftriggerd.store.records import Checkpoint, Delivered, NewEvent, Retry

LEASE = timedelta(seconds=30)
REASON = "expired after max_age 3d; breaker open"


def event(name: str, record: str, endpoints: tuple[str, ...] = ("hook",)) -> NewEvent:
    return NewEvent(
        event_id=name,
        record_id=record,
        occurred_at=datetime.now(UTC),
        body=b"{}",
        endpoints=endpoints,
        ordered_endpoints=frozenset(endpoints),
    )


async def ingest(store: Store, *events: NewEvent) -> datetime:
    """Stores the events; returns a moment after their max_age clocks started and before
    those of anything stored later (the clock moves on before returning)."""
    await store.ingest("t", events, Checkpoint("t", {"n": events[0].event_id}))
    cutoff = datetime.now(UTC)
    while datetime.now(UTC) <= cutoff + timedelta(microseconds=10):
        await asyncio.sleep(0.001)
    return cutoff


async def statuses(store: Store) -> dict[tuple[str, str], tuple[str, str | None]]:
    return {
        (r.endpoint, r.event_id): (r.status, r.last_error)
        for r in await store.list_deliveries(limit=1000)
    }


async def test_pending_deliveries_started_before_the_cutoff_go_dead(store: Store) -> None:
    cutoff = await ingest(store, event("old1", "A", ("hook", "other")), event("old2", "B"))
    await ingest(store, event("new", "C"))
    now = datetime.now(UTC)
    assert await store.expire_overdue("hook", cutoff, REASON, now, 100) == 2
    assert await statuses(store) == {
        ("hook", "old1"): ("dead", REASON),
        ("hook", "old2"): ("dead", REASON),
        ("other", "old1"): ("pending", None),
        ("hook", "new"): ("pending", None),
    }
    counts = await store.outbox_counts()
    assert (counts["hook"].pending, counts["hook"].dead) == (1, 2)
    # Nothing is left to expire: a second sweep changes nothing.
    assert await store.expire_overdue("hook", cutoff, "again", now, 100) == 0
    assert (await statuses(store))[("hook", "old1")] == ("dead", REASON)


async def test_a_retry_keeps_its_last_status_and_the_error_says_why(store: Store) -> None:
    cutoff = await ingest(store, event("e", "A"))
    [claim] = await store.claim_due("hook", 10, LEASE, datetime.now(UTC))
    later = datetime.now(UTC) + timedelta(hours=1)
    await store.record_outcome(claim, Retry(next_attempt_at=later, status=503, error="HTTP 503"))
    assert await store.expire_overdue("hook", cutoff, REASON, datetime.now(UTC), 10) == 1
    [row] = await store.list_deliveries()
    assert (row.status, row.last_status, row.last_error, row.attempts) == ("dead", 503, REASON, 1)
    assert row.next_attempt_at is None


async def test_a_live_lease_is_left_to_its_answer(store: Store) -> None:
    cutoff = await ingest(store, event("e", "A"))
    now = datetime.now(UTC)
    [claim] = await store.claim_due("hook", 10, LEASE, now)
    assert await store.expire_overdue("hook", cutoff, REASON, now, 10) == 0
    assert await store.record_outcome(claim, Delivered(status=204, at=now))
    assert (await statuses(store))[("hook", "e")] == ("delivered", None)


async def test_a_lapsed_lease_expires_and_its_late_answer_is_not_recorded(store: Store) -> None:
    cutoff = await ingest(store, event("e", "A"))
    now = datetime.now(UTC)
    [claim] = await store.claim_due("hook", 10, LEASE, now)
    after_lease = now + 2 * LEASE
    assert await store.expire_overdue("hook", cutoff, REASON, after_lease, 10) == 1
    assert not await store.record_outcome(claim, Delivered(status=204, at=after_lease))
    assert (await statuses(store))[("hook", "e")] == ("dead", REASON)


async def test_the_limit_takes_the_oldest_first(store: Store) -> None:
    cutoff = await ingest(store, *(event(f"e{n}", f"r{n}") for n in range(5)))
    now = datetime.now(UTC)
    assert await store.expire_overdue("hook", cutoff, REASON, now, 2) == 2
    found = await statuses(store)
    assert [found[("hook", f"e{n}")][0] for n in range(5)] == ["dead"] * 2 + ["pending"] * 3
    assert await store.expire_overdue("hook", cutoff, REASON, now, 10) == 3


async def test_an_expired_change_no_longer_holds_back_its_records_next(store: Store) -> None:
    cutoff = await ingest(store, event("first", "A"))
    await ingest(store, event("second", "A"))
    now = datetime.now(UTC)
    [held] = await store.claim_due("hook", 10, LEASE, now)
    await store.record_outcome(
        held, Retry(next_attempt_at=now + timedelta(hours=1), status=500, error="HTTP 500")
    )
    assert await store.claim_due("hook", 10, LEASE, now) == []  # behind "first"
    assert await store.expire_overdue("hook", cutoff, REASON, now, 10) == 1
    assert [c.event_id for c in await store.claim_due("hook", 10, LEASE, now)] == ["second"]


async def test_a_redrive_restarts_the_clock(store: Store) -> None:
    cutoff = await ingest(store, event("e", "A"))
    now = datetime.now(UTC)
    assert await store.expire_overdue("hook", cutoff, REASON, now, 10) == 1
    [row] = await store.list_deliveries()
    redriven_at = cutoff + timedelta(seconds=1)
    assert await store.redrive(row.id, redriven_at)
    # Started after the cut-off now: not overdue; overdue again past the new clock.
    assert await store.expire_overdue("hook", cutoff, REASON, redriven_at, 10) == 0
    later_cutoff = redriven_at + timedelta(milliseconds=1)
    assert await store.expire_overdue("hook", later_cutoff, "second", redriven_at, 10) == 1
    assert (await statuses(store))[("hook", "e")] == ("dead", "second")
