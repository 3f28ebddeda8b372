"""The SQLite engine's hot queries do work bounded by what they return, not by the size of
the store: delivered history and a long backlog cost them nothing. Work is counted in
SQLite virtual-machine steps (a progress handler), which is exact and not timing."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sftriggerd.routing import order_key
from sftriggerd.store.records import Checkpoint, Delivered, NewEvent
from sftriggerd.store.sqlite import SqliteStore, expiry, leases, ops

T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
OPEN = 20


def new_event(n: int) -> NewEvent:
    return NewEvent(
        event_id=f"evt_{n}",
        record_id=f"r{n % 50}",
        occurred_at=T0,
        body=b"{}",
        endpoints=("hook",),
        ordered_endpoints=frozenset({"hook"}),
        order_key=order_key("t", f"r{n % 50}"),
    )


async def store_file(path: Path, delivered: int, pending: int) -> None:
    """`delivered` finished deliveries, then `pending` open ones (all due)."""
    store = SqliteStore(path)
    await store.open()
    try:
        events = [new_event(n) for n in range(delivered + pending)]
        await store.ingest("t", events[:delivered], Checkpoint("t", {"n": delivered}))
        while claims := await store.claim_due("hook", 500, LEASE):
            await store.record_outcomes([(c, Delivered(status=204)) for c in claims])
        await store.ingest("t", events[delivered:], Checkpoint("t", {"n": len(events)}))
    finally:
        await store.close()


def vm_steps(path: Path, query: Callable[[sqlite3.Connection], object]) -> int:
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    with closing(sqlite3.connect(path)) as db:
        db.set_progress_handler(count, 1)
        query(db)
    return steps


async def test_counts_and_next_due_do_not_read_delivered_history(tmp_path: Path) -> None:
    await store_file(tmp_path / "young.db", delivered=10, pending=OPEN)
    await store_file(tmp_path / "old.db", delivered=3000, pending=OPEN)
    for query in (ops.outbox_counts, lambda db: ops.next_due_at(db, "hook")):
        young, old = vm_steps(tmp_path / "young.db", query), vm_steps(tmp_path / "old.db", query)
        assert old < young * 1.5, (young, old)
    with closing(sqlite3.connect(tmp_path / "old.db")) as db:
        assert ops.outbox_counts(db)["hook"].pending == OPEN


async def test_a_claim_reads_what_it_takes_not_the_backlog(tmp_path: Path) -> None:
    await store_file(tmp_path / "short.db", delivered=0, pending=100)
    await store_file(tmp_path / "long.db", delivered=0, pending=5000)

    def claim(db: sqlite3.Connection) -> object:
        return leases.claimable_ids(db, "hook", 10, datetime.now(UTC))

    short, long = vm_steps(tmp_path / "short.db", claim), vm_steps(tmp_path / "long.db", claim)
    assert long < short * 1.5, (short, long)


async def claim_some(path: Path, count: int) -> None:
    store = SqliteStore(path)
    await store.open()
    try:
        assert len(await store.claim_due("hook", count, LEASE)) == count
    finally:
        await store.close()


async def test_listing_what_is_in_flight_reads_those_in_flight_not_the_backlog(
    tmp_path: Path,
) -> None:
    # Fewer in flight than asked for, as the status page always asks (200): without an
    # index of its own the listing reads every delivery looking for more.
    for name, pending in (("short.db", 100), ("long.db", 5000)):
        await store_file(tmp_path / name, delivered=0, pending=pending)
        await claim_some(tmp_path / name, 5)

    def in_flight(db: sqlite3.Connection) -> object:
        return ops.list_deliveries(db, "in_flight", None, 200)

    short, long = (
        vm_steps(tmp_path / "short.db", in_flight),
        vm_steps(tmp_path / "long.db", in_flight),
    )
    assert long < short * 1.5, (short, long)
    with closing(sqlite3.connect(tmp_path / "long.db")) as db:
        listed = ops.list_deliveries(db, "in_flight", None, 200)
        plan = db.execute(
            "EXPLAIN QUERY PLAN " + ops.deliveries_query("WHERE d.status = ?"), ("in_flight", 200)
        ).fetchall()
    assert [row.status for row in listed] == ["in_flight"] * 5
    assert [row.id for row in listed] == sorted((row.id for row in listed), reverse=True)
    assert any("deliveries_in_flight" in str(step) for step in plan), plan


async def test_the_expiry_sweep_reads_the_overdue_not_the_backlog(tmp_path: Path) -> None:
    # The sweep runs at start and every 30 s: with nothing past max_age it must find that
    # without reading every open delivery.
    await store_file(tmp_path / "short.db", delivered=0, pending=100)
    await store_file(tmp_path / "long.db", delivered=0, pending=5000)
    now = datetime.now(UTC)

    def sweep(cutoff: datetime) -> Callable[[sqlite3.Connection], object]:
        return lambda db: expiry.expire_overdue(db, "hook", cutoff, "too old", now, 500)

    nothing_due = sweep(now - timedelta(days=3))
    short = vm_steps(tmp_path / "short.db", nothing_due)
    long = vm_steps(tmp_path / "long.db", nothing_due)
    assert long < short * 1.5, (short, long)
    with closing(sqlite3.connect(tmp_path / "long.db", isolation_level=None)) as db:
        assert expiry.expire_overdue(db, "hook", now - timedelta(days=3), "x", now, 500) == 0
        # Still every overdue one is found, the oldest first, a batch at a time.
        assert expiry.expire_overdue(db, "hook", now + timedelta(days=1), "x", now, 500) == 500
        assert ops.outbox_counts(db)["hook"].dead == 500
