"""A store file written by an older version is brought to the current schema on open."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sftriggerd.store.migrations.sqlite import MIGRATIONS
from sftriggerd.store.sqlite import SqliteStore
from sftriggerd.store.sqlite_ops import _statements


def version_1_file(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for statement in _statements(MIGRATIONS[0]):
            db.execute(statement)
        db.execute("INSERT INTO schema_version (version) VALUES (1)")
        db.execute(
            "INSERT INTO events (trigger, event_id, record_id, occurred_at, body, created_at)"
            " VALUES ('t', 'evt_old', '001A', 0, X'7B7D', 0)"
        )
        db.execute(
            "INSERT INTO deliveries (event_seq, endpoint, status, next_attempt_at, created_at,"
            " retry_since) VALUES (1, 'hook', 'pending', 0, 0, 0)"
        )


async def test_a_version_1_file_is_migrated_and_its_pending_delivery_claimed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    version_1_file(path)
    store = SqliteStore(path)
    await store.open()
    try:
        assert await store.schema_version() == len(MIGRATIONS) >= 2
        [claim] = await store.claim_due("hook", 10, timedelta(seconds=30), datetime.now(UTC))
        assert (claim.event_id, claim.body) == ("evt_old", b"{}")
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert "deliveries_pending" in indexes
