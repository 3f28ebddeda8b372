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
from sftriggerd.store.sqlite import SqliteStore, leases, ops

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
