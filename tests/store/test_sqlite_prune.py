"""Pruning in bounded steps: all of an old history goes, nothing open or young does, and no
step holds the write lock for more than one batch."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sftriggerd.store.records import Dead, Delivered
from sftriggerd.store.sqlite import SqliteStore
from sftriggerd.store.sqlite import prune as sqlite_prune
from tests.store.test_store_contract import LEASE, checkpoint, event
from tests.support.clock import FrozenClock


async def history(path: Path, delivered: int, open_: int, unrouted: int) -> None:
    store = SqliteStore(path)
    await store.open()
    try:
        events = [event(n, record=f"r{n}") for n in range(delivered + open_)]
        events += [event(n, endpoints=()) for n in range(10_000, 10_000 + unrouted)]
        await store.ingest("t", events, checkpoint(1))
        claims = await store.claim_due("hook", delivered + open_, LEASE)
        done = [(c, Delivered(status=200)) for c in claims[:delivered]]
        dead = [(c, Dead(status=410, error="gone")) for c in claims[delivered:]]
        assert all(await store.record_outcomes(done + dead))
    finally:
        await store.close()


def a_day_later(path: Path) -> SqliteStore:
    """The store of `history`, its clock a day on: all of that history is a day old."""
    return SqliteStore(path, clock=FrozenClock(datetime.now(UTC) + timedelta(days=1)))


def count(path: Path, table: str) -> int:
    with closing(sqlite3.connect(path)) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


async def test_prune_takes_all_old_history_in_steps_of_one_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_prune, "BATCH_ROWS", 40)
    path = tmp_path / "state.db"
    await history(path, delivered=130, open_=3, unrouted=90)
    store = a_day_later(path)
    await store.open()
    deleted_per_step: list[int] = []
    real_step = sqlite_prune.prune_delivered

    def counted(db: sqlite3.Connection, **kwargs: object) -> int:
        deleted = real_step(db, **kwargs)  # type: ignore[arg-type]
        deleted_per_step.append(deleted)
        return deleted

    monkeypatch.setattr(sqlite_prune, "prune_delivered", counted)
    try:
        assert await store.prune(timedelta(hours=1)) == 130
        assert deleted_per_step == [40, 40, 40, 10]
        # The dead ones stay with their events; delivered ones and unrouted events are gone.
        assert [r.status for r in await store.list_deliveries()] == ["dead"] * 3
        assert count(path, "events") == 3
        assert await store.prune(timedelta(hours=1)) == 0
    finally:
        await store.close()


async def test_prune_leaves_young_history(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    await history(path, delivered=5, open_=0, unrouted=5)
    store = a_day_later(path)
    await store.open()
    try:
        assert await store.prune(timedelta(days=1, hours=1)) == 0
        assert count(path, "deliveries") == 5 and count(path, "events") == 10
    finally:
        await store.close()


async def test_a_pruned_event_is_not_a_duplicate_but_an_unpruned_one_is(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    await history(path, delivered=2, open_=1, unrouted=0)
    store = a_day_later(path)
    await store.open()
    try:
        await store.prune(timedelta(hours=1))
        # evt_2 (dead) still guards against a re-read duplicate.
        result = await store.ingest("t", [event(2, record="r2")], checkpoint(2))
        assert (result.new_events, result.duplicate_events) == (0, 1)
    finally:
        await store.close()
