"""A store file written by an older version is brought to the current schema on open."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sftriggerd.store.migrations.sqlite import MIGRATIONS
from sftriggerd.store.sqlite import SqliteStore
from sftriggerd.store.sqlite_ops import _statements


def old_file(path: Path, version: int) -> None:
    """A store file as `version` left it, holding one delivery in each state."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for migration in MIGRATIONS[:version]:
            for statement in _statements(migration):
                db.execute(statement)
        db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        for seq, (event_id, status, finished_at) in enumerate(
            [("evt_old", "pending", None), ("evt_done", "delivered", 1), ("evt_dead", "dead", 1)],
            start=1,
        ):
            db.execute(
                "INSERT INTO events (trigger, event_id, record_id, occurred_at, body, created_at)"
                " VALUES ('t', ?, ?, 0, X'7B7D', 0)",
                (event_id, f"001{seq}"),
            )
            db.execute(
                "INSERT INTO deliveries (event_seq, endpoint, status, next_attempt_at,"
                " created_at, retry_since, finished_at) VALUES (?, 'hook', ?, 0, 0, 0, ?)",
                (seq, status, finished_at),
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
        counts = (await store.outbox_counts())["hook"]
        assert (counts.pending, counts.dead) == (1, 1)
        [claim] = await store.claim_due("hook", 10, timedelta(seconds=30), datetime.now(UTC))
        assert (claim.event_id, claim.body) == ("evt_old", b"{}")
        assert await store.redrive_endpoint("hook", datetime.now(UTC)) == 1
        assert await store.prune(datetime.now(UTC)) == 1  # the delivered one
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert {"deliveries_pending", "deliveries_open", "deliveries_dead"} <= indexes
    assert not {"deliveries_due", "deliveries_finished"} & indexes
