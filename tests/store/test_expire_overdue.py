"""`Store.expire_overdue`: deliveries past max_age go dead without an attempt, whatever holds
them back (an open breaker, an older change of their record); a live lease is left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sftriggerd.routing import order_key
from sftriggerd.store.base import Store
from sftriggerd.store.records import Checkpoint, Delivered, NewEvent, Retry
from tests.support.clock import ShiftedClock

LEASE = timedelta(seconds=30)
MAX_AGE = timedelta(days=3)
REASON = "expired after max_age 3d; breaker open"


def event(name: str, record: str, endpoints: tuple[str, ...] = ("hook",)) -> NewEvent:
    return NewEvent(
        event_id=name,
        record_id=record,
        occurred_at=datetime.now(UTC),
        body=b"{}",
        endpoints=endpoints,
        ordered_endpoints=frozenset(endpoints),
        order_key=order_key("t", record),
    )


async def ingest(store: Store, *events: NewEvent) -> None:
    await store.ingest("t", events, Checkpoint("t", {"n": events[0].event_id}))


def an_hour_later(clock: ShiftedClock) -> None:
    clock.advance(timedelta(hours=1))


def reach_max_age(clock: ShiftedClock) -> None:
    """What was stored before `an_hour_later` is now past MAX_AGE; what was stored after it
    half an hour short of it."""
    clock.advance(MAX_AGE - timedelta(minutes=30))


async def statuses(store: Store) -> dict[tuple[str, str], tuple[str, str | None]]:
    return {
        (r.endpoint, r.event_id): (r.status, r.last_error)
        for r in await store.list_deliveries(limit=1000)
    }


async def test_pending_deliveries_started_before_the_cutoff_go_dead(
    store: Store, clock: ShiftedClock
) -> None:
    await ingest(store, event("old1", "A", ("hook", "other")), event("old2", "B"))
    an_hour_later(clock)
    await ingest(store, event("new", "C"))
    reach_max_age(clock)
    assert await store.expire_overdue("hook", MAX_AGE, REASON, 100) == 2
    assert await statuses(store) == {
        ("hook", "old1"): ("dead", REASON),
        ("hook", "old2"): ("dead", REASON),
        ("other", "old1"): ("pending", None),
        ("hook", "new"): ("pending", None),
    }
    counts = await store.outbox_counts()
    assert (counts["hook"].pending, counts["hook"].dead) == (1, 2)
    # Nothing is left to expire: a second sweep changes nothing.
    assert await store.expire_overdue("hook", MAX_AGE, "again", 100) == 0
    assert (await statuses(store))[("hook", "old1")] == ("dead", REASON)


async def test_a_retry_keeps_its_last_status_and_the_error_says_why(
    store: Store, clock: ShiftedClock
) -> None:
    await ingest(store, event("e", "A"))
    [claim] = await store.claim_due("hook", 10, LEASE)
    await store.record_outcome(claim, Retry(MAX_AGE * 2, status=503, error="HTTP 503"))
    assert await store.expire_overdue("hook", MAX_AGE, REASON, 10) == 0  # not old yet
    clock.advance(MAX_AGE)
    assert await store.expire_overdue("hook", MAX_AGE, REASON, 10) == 1
    [row] = await store.list_deliveries()
    assert (row.status, row.last_status, row.last_error, row.attempts) == ("dead", 503, REASON, 1)
    assert row.next_attempt_at is None


async def test_a_live_lease_is_left_to_its_answer(store: Store, clock: ShiftedClock) -> None:
    await ingest(store, event("e", "A"))
    clock.advance(MAX_AGE)
    [claim] = await store.claim_due("hook", 10, LEASE)
    assert await store.expire_overdue("hook", MAX_AGE, REASON, 10) == 0
    assert await store.record_outcome(claim, Delivered(status=204))
    assert (await statuses(store))[("hook", "e")] == ("delivered", None)


async def test_a_lapsed_lease_expires_and_its_late_answer_is_not_recorded(
    store: Store, clock: ShiftedClock
) -> None:
    await ingest(store, event("e", "A"))
    clock.advance(MAX_AGE)
    [claim] = await store.claim_due("hook", 10, LEASE)
    clock.advance(2 * LEASE)
    assert await store.expire_overdue("hook", MAX_AGE, REASON, 10) == 1
    assert not await store.record_outcome(claim, Delivered(status=204))
    assert (await statuses(store))[("hook", "e")] == ("dead", REASON)


async def test_the_limit_takes_the_oldest_first(store: Store, clock: ShiftedClock) -> None:
    await ingest(store, *(event(f"e{n}", f"r{n}") for n in range(5)))
    clock.advance(MAX_AGE)
    assert await store.expire_overdue("hook", MAX_AGE, REASON, 2) == 2
    found = await statuses(store)
    assert [found[("hook", f"e{n}")][0] for n in range(5)] == ["dead"] * 2 + ["pending"] * 3
    assert await store.expire_overdue("hook", MAX_AGE, REASON, 10) == 3


async def test_the_limit_takes_the_longest_overdue_first_not_the_first_stored(
    store: Store, clock: ShiftedClock
) -> None:
    await ingest(store, event("first", "A"))
    clock.advance(MAX_AGE)
    assert await store.expire_overdue("hook", MAX_AGE, REASON, 10) == 1
    await ingest(store, event("second", "B"))
    an_hour_later(clock)
    [first] = [r for r in await store.list_deliveries() if r.event_id == "first"]
    assert await store.redrive(first.id)  # stored first, its clock started last
    clock.advance(MAX_AGE)
    assert await store.expire_overdue("hook", MAX_AGE, REASON, 1) == 1
    found = await statuses(store)
    assert (found[("hook", "first")][0], found[("hook", "second")]) == ("pending", ("dead", REASON))
    assert await store.expire_overdue("hook", MAX_AGE, REASON, 1) == 1
    assert (await statuses(store))[("hook", "first")] == ("dead", REASON)


async def test_an_expired_change_no_longer_holds_back_its_records_next(
    store: Store, clock: ShiftedClock
) -> None:
    await ingest(store, event("first", "A"))
    an_hour_later(clock)
    await ingest(store, event("second", "A"))
    reach_max_age(clock)
    [held] = await store.claim_due("hook", 10, LEASE)
    await store.record_outcome(held, Retry(timedelta(hours=1), status=500, error="HTTP 500"))
    assert await store.claim_due("hook", 10, LEASE) == []  # behind "first"
    assert await store.expire_overdue("hook", MAX_AGE, REASON, 10) == 1
    assert [c.event_id for c in await store.claim_due("hook", 10, LEASE)] == ["second"]


async def test_a_redrive_restarts_the_clock(store: Store, clock: ShiftedClock) -> None:
    await ingest(store, event("e", "A"))
    clock.advance(MAX_AGE)
    assert await store.expire_overdue("hook", MAX_AGE, REASON, 10) == 1
    [row] = await store.list_deliveries()
    assert await store.redrive(row.id)
    # Its max_age clock started again at the redrive: not overdue until MAX_AGE after it.
    assert await store.expire_overdue("hook", MAX_AGE, REASON, 10) == 0
    clock.advance(MAX_AGE - timedelta(hours=1))
    assert await store.expire_overdue("hook", MAX_AGE, REASON, 10) == 0
    clock.advance(timedelta(hours=1))
    assert await store.expire_overdue("hook", MAX_AGE, "second", 10) == 1
    assert (await statuses(store))[("hook", "e")] == ("dead", "second")
