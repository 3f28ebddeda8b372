"""The org's data on disk, so a restarted emulator still has its records, like an org.

SQLite from the standard library rather than a JSON file rewritten through temp-file + rename:
an org transaction touches a handful of rows, and SQLite commits just those rows atomically,
where a snapshot file would rewrite every record on every change (quadratic when a test
creates thousands of rows one request at a time). WAL mode with `synchronous=NORMAL` keeps a
commit well under a millisecond, which is why these calls run on the event loop: handing each
one to a thread would cost more than it saves and would let two transactions interleave.
A crash loses at most the last commit, never the file.

The streaming side keeps its own event log in the same directory, in its own file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FILE_NAME = "org.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY,
    object TEXT NOT NULL,
    fields TEXT NOT NULL,
    deleted_at TEXT
);
CREATE TABLE IF NOT EXISTS objects (name TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class StoredRecord:
    record_id: str
    object_name: str
    fields: dict[str, Any]
    deleted_at: str | None


@dataclass
class OrgSnapshot:
    """Everything `OrgStore.load` found: object schemas, id counters, records in id order."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    ids: dict[str, Any] = field(default_factory=dict)
    records: list[StoredRecord] = field(default_factory=list)


class OrgStore:
    """One SQLite file in the state directory; each `commit` is one org transaction."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(state_dir / FILE_NAME, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def load(self) -> OrgSnapshot:
        snapshot = OrgSnapshot()
        for (state,) in self._db.execute("SELECT state FROM objects ORDER BY rowid"):
            snapshot.objects.append(json.loads(state))
        row = self._db.execute("SELECT value FROM meta WHERE key = 'ids'").fetchone()
        if row is not None:
            snapshot.ids = json.loads(row[0])
        query = "SELECT id, object, fields, deleted_at FROM records ORDER BY id"
        for record_id, object_name, fields, deleted_at in self._db.execute(query):
            snapshot.records.append(
                StoredRecord(record_id, object_name, json.loads(fields), deleted_at)
            )
        return snapshot

    def commit(
        self,
        *,
        records: Iterable[StoredRecord] = (),
        removed_ids: Iterable[str] = (),
        objects: Iterable[dict[str, Any]] = (),
        ids: dict[str, Any] | None = None,
    ) -> None:
        """Writes one transaction's rows, schema changes and id counters, all or nothing."""
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO records (id, object, fields, deleted_at)"
                " VALUES (?, ?, ?, ?)",
                [(r.record_id, r.object_name, json.dumps(r.fields), r.deleted_at) for r in records],
            )
            self._db.executemany(
                "DELETE FROM records WHERE id = ?", [(record_id,) for record_id in removed_ids]
            )
            self._db.executemany(
                "INSERT INTO objects (name, state) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET state = excluded.state",
                [(state["name"], json.dumps(state)) for state in objects],
            )
            if ids is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('ids', ?)",
                    (json.dumps(ids),),
                )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def close(self) -> None:
        self._db.close()


class _Transaction:
    """BEGIN ... COMMIT, or ROLLBACK when the block raises."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
