"""Schema 6: a delivery's columns must agree (CHECK constraints). A populated schema-5 file
is rebuilt with them and keeps every row, attempt and id; code that knows only schema 5
refuses the file afterwards, saying what to do."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from sftriggerd.errors import StoreError
from sftriggerd.store.sqlite import SqliteStore
from sftriggerd.store.sqlite import ops as sqlite_ops
from sftriggerd.store.sqlite.migrations import MIGRATIONS
from tests.store.test_sqlite_migrations import old_file

CONSTRAINED = 6


def schema_5_file(path: Path) -> None:
    """`old_file` at schema 5, plus what a live store holds: a delivery in flight under a
    lease, attempts of a dead one, and a pruned delivery whose id must not come back."""
    old_file(path, CONSTRAINED - 1)
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "INSERT INTO events (trigger, event_id, record_id, occurred_at, body, created_at)"
            " VALUES ('t', 'evt_flying', '0019', 0, X'7B7D', 0)"
        )
        db.execute(
            "INSERT INTO deliveries (event_seq, endpoint, status, next_attempt_at, lease_token,"
            " created_at, retry_since) VALUES (6, 'hook', 'in_flight', 4e9, 'tok', 0, 0)"
        )
        db.execute(
            "INSERT INTO deliveries (id, event_seq, endpoint, status, created_at, retry_since,"
            " finished_at) VALUES (40, 6, 'gone', 'delivered', 0, 0, 0)"
        )
        db.execute("DELETE FROM deliveries WHERE id = 40")  # pruned: id 40 is used up
        db.execute(
            "INSERT INTO attempts (delivery_id, at, status, error) VALUES (3, 1, 500, 'HTTP 500')"
        )


def rows(path: Path) -> dict[str, tuple[object, ...]]:
    with closing(sqlite3.connect(path)) as db:
        found = db.execute(
            "SELECT e.event_id, d.id, d.status, d.attempts, d.lease_token,"
            " d.finished_at IS NULL FROM deliveries d JOIN events e ON e.seq = d.event_seq"
        ).fetchall()
    return {r[0] + "/" + str(r[1]): r[2:] for r in found}


async def test_a_populated_schema_5_file_gains_the_constraints_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    schema_5_file(path)
    store = SqliteStore(path)
    await store.open()
    try:
        assert await store.schema_version() == len(MIGRATIONS) >= CONSTRAINED
        assert rows(path) == {
            "evt_old/1": ("pending", 0, None, 1),
            "evt_done/2": ("delivered", 0, None, 0),
            "evt_dead/3": ("dead", 0, None, 0),
            "evt_odd/4": ("pending", 0, None, 1),  # its stray finished_at is cleared
            "evt_odd_dead/5": ("dead", 0, None, 0),  # finished when it died
            "evt_flying/6": ("in_flight", 0, "tok", 1),
        }
        detail = await store.get_delivery_detail(3)
        assert detail is not None and [a.status for a in detail.attempts] == [500]
        # The store still works, and a new delivery gets an id never used before.
        claims = await store.claim_due("hook", 10, timedelta(seconds=30))
        assert {c.event_id for c in claims} == {"evt_old", "evt_odd"}
        assert await store.redrive(3)
        await store.ingest("t", [], None)
    finally:
        await store.close()
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "INSERT INTO deliveries (event_seq, endpoint, status, next_attempt_at, created_at,"
            " retry_since) VALUES (1, 'hook', 'pending', 0, 0, 0)"
        )
        (newest,) = db.execute("SELECT max(id) FROM deliveries").fetchone()
        assert newest == 41
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"deliveries_pending", "deliveries_open", "deliveries_order"} <= indexes
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []


@pytest.mark.parametrize(
    "breach",
    [
        "UPDATE deliveries SET finished_at = 1 WHERE status = 'pending'",
        "UPDATE deliveries SET finished_at = NULL WHERE status = 'delivered'",
        "UPDATE deliveries SET status = 'delivered' WHERE status = 'pending'",
        "UPDATE deliveries SET status = 'lost'",
        "UPDATE deliveries SET attempts = -1",
        "UPDATE deliveries SET next_attempt_at = NULL WHERE status = 'pending'",
        "UPDATE deliveries SET lease_token = 'x' WHERE status = 'pending'",
        "UPDATE deliveries SET lease_token = NULL WHERE status = 'in_flight'",
    ],
)
async def test_a_row_that_contradicts_itself_is_refused(tmp_path: Path, breach: str) -> None:
    path = tmp_path / "old.db"
    schema_5_file(path)
    store = SqliteStore(path)
    await store.open()
    await store.close()
    with closing(sqlite3.connect(path)) as db, pytest.raises(sqlite3.IntegrityError):
        db.execute(breach)


async def test_code_that_knows_only_schema_5_refuses_the_rebuilt_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    await store.open()
    await store.close()
    # The previous release: the same code, without the last schema step.
    monkeypatch.setattr(sqlite_ops, "MIGRATIONS", MIGRATIONS[: CONSTRAINED - 1])
    older = SqliteStore(path)
    with pytest.raises(StoreError) as refused:
        await older.open()
    assert (
        f"store schema {len(MIGRATIONS)} is newer than this sftriggerd supports"
        f" ({CONSTRAINED - 1}); upgrade sftriggerd"
    ) in str(refused.value)
    assert str(path) in str(refused.value)
    assert not await older.ping()
