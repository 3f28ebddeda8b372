"""A store file written by an older version is brought to the current schema on open."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from sftriggerd.store.sqlite import SqliteStore
from sftriggerd.store.sqlite.migrations import MIGRATIONS
from sftriggerd.store.sqlite.ops import _statements


def old_file(path: Path, version: int) -> None:
    """A store file as `version` left it, holding a delivery in each state, and two whose
    `finished_at` contradicts their state (not written by any version, but possible in a
    file edited by hand)."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for migration in MIGRATIONS[:version]:
            for statement in _statements(migration):
                db.execute(statement)
        db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        for seq, (event_id, endpoint, status, finished_at) in enumerate(
            [
                ("evt_old", "hook", "pending", None),
                ("evt_done", "hook", "delivered", 1),
                ("evt_dead", "hook", "dead", 1),
                ("evt_odd", "hook", "pending", 1),
                ("evt_odd_dead", "other", "dead", None),
            ],
            start=1,
        ):
            db.execute(
                "INSERT INTO events (trigger, event_id, record_id, occurred_at, body, created_at)"
                " VALUES ('t', ?, ?, 0, X'7B7D', 0)",
                (event_id, f"001{seq}"),
            )
            db.execute(
                "INSERT INTO deliveries (event_seq, endpoint, status, next_attempt_at,"
                " created_at, retry_since, finished_at) VALUES (?, ?, ?, 0, 0, 0, ?)",
                (seq, endpoint, status, finished_at),
            )


@pytest.mark.parametrize("version", [1, 2])
async def test_an_older_file_is_migrated_and_its_deliveries_keep_their_state(
    tmp_path: Path, version: int
) -> None:
    path = tmp_path / "old.db"
    old_file(path, version)
    store = SqliteStore(path)
    await store.open()
    try:
        assert await store.schema_version() == len(MIGRATIONS) >= 3
        counts = await store.outbox_counts()
        assert {name: (c.pending, c.dead) for name, c in counts.items()} == {
            "hook": (2, 1),
            "other": (0, 1),
        }
        claims = await store.claim_due("hook", 10, timedelta(seconds=30))
        assert [(c.event_id, c.body) for c in claims] == [("evt_old", b"{}"), ("evt_odd", b"{}")]
        assert await store.redrive_endpoint("hook") == 1
        assert await store.prune(timedelta(0)) == 1  # the delivered one
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert {"deliveries_pending", "deliveries_open", "deliveries_dead"} <= indexes
    assert not {"deliveries_due", "deliveries_finished"} & indexes


async def test_a_schema_8_file_gains_trace_contexts_and_its_claims_carry_none(
    tmp_path: Path,
) -> None:
    path = tmp_path / "schema8.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for migration in MIGRATIONS[:8]:
            for statement in _statements(migration):
                db.execute(statement)
        db.execute("INSERT INTO schema_version (version) VALUES (8)")
        for seq, endpoint in enumerate(["hook", "hook", "other"], start=1):
            db.execute(
                "INSERT INTO events (trigger, event_id, record_id, occurred_at, body, created_at)"
                " VALUES ('t', ?, NULL, 0, X'7B7D', 0)",
                (f"evt_{seq}",),
            )
            db.execute(
                "INSERT INTO deliveries (event_seq, endpoint, status, next_attempt_at,"
                " created_at, retry_since) VALUES (?, ?, 'pending', 0, 0, 0)",
                (seq, endpoint),
            )
    store = SqliteStore(path)
    await store.open()
    try:
        assert await store.schema_version() == len(MIGRATIONS) == 9
        claims = await store.claim_due("hook", 10, timedelta(seconds=30))
        claims += await store.claim_due("other", 10, timedelta(seconds=30))
        assert [(c.event_id, c.trace_context) for c in claims] == [
            ("evt_1", None),
            ("evt_2", None),
            ("evt_3", None),
        ]
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        columns = {row[1]: row[2] for row in db.execute("PRAGMA table_info(events)")}
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert columns["trace_context"] == "TEXT"
    assert "deliveries_dead_finished" in indexes  # the last hour's dead rows, by finish time
