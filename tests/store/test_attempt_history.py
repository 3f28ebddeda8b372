"""Every attempt of a delivery is kept, with its outcome, until the delivery is pruned."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sftriggerd.errors import StoreError
from sftriggerd.store.base import Store
from sftriggerd.store.records import (
    AttemptTrace,
    Checkpoint,
    Claim,
    Dead,
    Delivered,
    NewEvent,
    Retry,
)
from sftriggerd.store.sqlite import SqliteStore
from sftriggerd.store.sqlite.migrations import MIGRATIONS
from tests.store.test_sqlite_migrations import old_file
from tests.support.clock import FrozenClock

T0 = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
BODY = b'{"type":"record.updated","id":"evt_1"}'


async def one_claim(store: Store, event_id: str = "evt_1") -> Claim:
    event = NewEvent(
        event_id=event_id, record_id="001", occurred_at=T0, body=BODY, endpoints=("hook",)
    )
    await store.ingest("accounts", [event], Checkpoint(trigger="accounts", position={}))
    [claim] = await store.claim_due("hook", 1, LEASE)
    return claim


async def claim_again(store: Store) -> Claim:
    [claim] = await store.claim_due("hook", 1, LEASE)
    return claim


async def test_each_attempt_is_kept_oldest_first_across_a_redrive(tmp_path: Path) -> None:
    clock = FrozenClock(T0)
    store = SqliteStore(tmp_path / "s.db", clock=clock)
    await store.open()
    try:
        claim = await one_claim(store)
        retry_at = T0 + timedelta(seconds=5)
        first = Retry(
            delay=timedelta(seconds=5),
            status=503,
            error="HTTP 503: busy",
            trace=AttemptTrace(started_at=T0, duration_ms=42, answer="busy\nnow"),
        )
        assert await store.record_outcome(claim, first)
        clock.advance(timedelta(seconds=5))
        claim = await claim_again(store)
        second = Dead(
            status=None,
            error="timeout after 10s (max_age reached)",
            trace=AttemptTrace(started_at=retry_at, duration_ms=10_000, answer=None),
        )
        clock.advance(timedelta(seconds=10))
        assert await store.record_outcome(claim, second)
        later = retry_at + timedelta(minutes=1)
        clock.advance(later - clock())
        assert await store.redrive(claim.delivery_id)
        claim = await claim_again(store)
        assert await store.record_outcome(claim, Delivered(status=204))

        detail = await store.get_delivery_detail(claim.delivery_id)
        assert detail is not None and detail.body == BODY
        assert detail.delivery.status == "delivered" and detail.delivery.attempts == 1
        history = [
            (a.at, a.duration_ms, a.status, a.error, a.answer, a.next_attempt_at)
            for a in detail.attempts
        ]
        assert history == [
            (T0, 42, 503, "HTTP 503: busy", "busy\nnow", retry_at),
            (retry_at, 10_000, None, "timeout after 10s (max_age reached)", None, None),
            # Written without a trace: the store's time, no duration, no answer.
            (later, None, 204, None, None, None),
        ]
        assert await store.get_delivery_detail(claim.delivery_id + 1) is None
    finally:
        await store.close()


async def test_an_outcome_whose_lease_was_lost_adds_no_attempt(tmp_path: Path) -> None:
    clock = FrozenClock(T0)
    store = SqliteStore(tmp_path / "s.db", clock=clock)
    await store.open()
    try:
        stale = await one_claim(store)
        # The lease ran out and another process took the delivery.
        clock.advance(LEASE + timedelta(seconds=1))
        fresh = await claim_again(store)
        recorded = await store.record_outcomes(
            [(stale, Delivered(status=200)), (fresh, Delivered(status=201))]
        )
        assert recorded == [False, True]
        detail = await store.get_delivery_detail(fresh.delivery_id)
        assert detail is not None
        assert [a.status for a in detail.attempts] == [201]
    finally:
        await store.close()


async def test_an_attempt_that_cannot_be_written_leaves_the_outcome_unrecorded(
    tmp_path: Path,
) -> None:
    """One transaction: a history row that fails takes its outcome down with it, so the
    delivery is sent again rather than marked delivered without a trace."""
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    await store.open()
    try:
        claim = await one_claim(store)
        with sqlite3.connect(path) as other:
            other.execute(
                "CREATE TRIGGER no_room BEFORE INSERT ON attempts"
                " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
            )
        with pytest.raises(StoreError, match="disk is full"):
            await store.record_outcome(claim, Delivered(status=200))
        row = await store.get_delivery(claim.delivery_id)
        assert row is not None and row.status == "in_flight" and row.attempts == 0
    finally:
        await store.close()


async def test_attempts_are_pruned_with_their_delivery(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    clock = FrozenClock(T0)
    store = SqliteStore(path, clock=clock)
    await store.open()
    try:
        old = await one_claim(store, "evt_old")
        await store.record_outcome(old, Retry(timedelta(0), 500, "HTTP 500"))
        old = await claim_again(store)
        await store.record_outcome(old, Delivered(status=200))
        clock.advance(timedelta(days=2))
        young = await one_claim(store, "evt_young")
        await store.record_outcome(young, Delivered(status=200))
        assert await store.prune(timedelta(days=1)) == 1
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        kept = db.execute("SELECT delivery_id, status FROM attempts ORDER BY id").fetchall()
    assert kept == [(young.delivery_id, 200)]


async def test_a_schema_4_file_with_data_gains_the_history(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old_file(path, 4)
    store = SqliteStore(path)
    await store.open()
    try:
        assert await store.schema_version() == len(MIGRATIONS) >= 5
        dead = [row for row in await store.list_deliveries(status="dead") if row.endpoint == "hook"]
        detail = await store.get_delivery_detail(dead[0].id)
        # Attempts made before the upgrade were not kept: the history starts empty.
        assert detail is not None and detail.body == b"{}" and detail.attempts == ()
        assert await store.redrive(dead[0].id)
        [claim] = [c for c in await store.claim_due("hook", 5, LEASE) if c.event_id == "evt_dead"]
        await store.record_outcome(claim, Delivered(status=200))
        detail = await store.get_delivery_detail(dead[0].id)
        assert detail is not None and [a.status for a in detail.attempts] == [200]
    finally:
        await store.close()
