"""The streaming side's state on disk: retained events, replay counters, channel definitions.

A restarted emulator must still answer a subscribe with a stored replay id the way the org
would, so the event log survives restarts; clients and subscriptions do not (a restart is a
lost connection: clients handshake again, as they must after a real outage).

SQLite beside the org's own file, for the same reasons the org uses it (see
`sftriggerd_emulator.persistence`): each event is one small committed insert.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sftriggerd_emulator.streaming.streams import StoredEvent

FILE_NAME = "streaming.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    stream TEXT NOT NULL,
    replay_id INTEGER NOT NULL,
    time TEXT NOT NULL,
    entity TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (stream, replay_id)
);
CREATE TABLE IF NOT EXISTS streams (name TEXT PRIMARY KEY, last_replay_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS definitions (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    PRIMARY KEY (kind, name)
);
"""


@dataclass
class StreamingSnapshot:
    last_replay_ids: dict[str, int] = field(default_factory=dict)
    events: dict[str, list[StoredEvent]] = field(default_factory=dict)
    # kind ("pushtopic", "channel") -> name -> definition
    definitions: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


class StreamingStore:
    """`streaming.sqlite3` in the state directory."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(state_dir / FILE_NAME, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def load(self) -> StreamingSnapshot:
        snapshot = StreamingSnapshot()
        for name, last in self._db.execute("SELECT name, last_replay_id FROM streams"):
            snapshot.last_replay_ids[name] = int(last)
        query = "SELECT stream, replay_id, time, entity, data FROM events ORDER BY replay_id"
        for stream, replay_id, time, entity, data in self._db.execute(query):
            moment = datetime.fromisoformat(time)
            event = StoredEvent(int(replay_id), moment, entity, json.loads(data))
            snapshot.events.setdefault(stream, []).append(event)
        for kind, name, definition in self._db.execute(
            "SELECT kind, name, definition FROM definitions ORDER BY rowid"
        ):
            snapshot.definitions.setdefault(kind, {})[name] = json.loads(definition)
        return snapshot

    def add_event(self, stream: str, event: StoredEvent) -> None:
        """Stores one event and the stream's counter in one commit."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "INSERT INTO events (stream, replay_id, time, entity, data) VALUES (?, ?, ?, ?, ?)",
                (
                    stream,
                    event.replay_id,
                    event.time.isoformat(),
                    event.entity,
                    json.dumps(event.data),
                ),
            )
            self._db.execute(
                "INSERT OR REPLACE INTO streams (name, last_replay_id) VALUES (?, ?)",
                (stream, event.replay_id),
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def remove_events(self, stream: str, replay_ids: Iterable[int]) -> None:
        self._db.executemany(
            "DELETE FROM events WHERE stream = ? AND replay_id = ?",
            [(stream, replay_id) for replay_id in replay_ids],
        )

    def put_definition(self, kind: str, name: str, definition: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO definitions (kind, name, definition) VALUES (?, ?, ?)"
            " ON CONFLICT (kind, name) DO UPDATE SET definition = excluded.definition",
            (kind, name, json.dumps(definition)),
        )

    def remove_definition(self, kind: str, name: str) -> None:
        self._db.execute("DELETE FROM definitions WHERE kind = ? AND name = ?", (kind, name))

    def close(self) -> None:
        self._db.close()
