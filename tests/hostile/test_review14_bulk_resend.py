"""Review of issue 14's bulk resend: the store runs every operation on one thread, so a
resend of a long history done as one piece of work there holds up every other part of the
daemon (ingest, claims, the admin API) until the last row is queued, whatever the chunking
does for SQLite's write lock. An ingest asked for while a large resend runs must not wait
for all of it."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from sftriggerd.store.replay import Selection
from sftriggerd.store.sqlite import SqliteStore
from tests.store.test_store_contract import LEASE, checkpoint, event

ROWS = 60_000


def seed_delivered(path: Path, rows: int) -> None:
    db = sqlite3.connect(path)
    try:
        with db:
            db.executemany(
                "INSERT INTO events (trigger, event_id, occurred_at, body, created_at)"
                " VALUES ('old', ?, 0, X'7B7D', 0)",
                ((f"old_{n}",) for n in range(rows)),
            )
            db.execute(
                "INSERT INTO deliveries (event_seq, endpoint, status, created_at, retry_since,"
                " finished_at) SELECT seq, 'hook', 'delivered', 0, 0, 1 FROM events"
                " WHERE trigger = 'old'"
            )
    finally:
        db.close()


async def test_an_ingest_does_not_wait_for_a_whole_bulk_resend(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    await store.open()
    try:
        seed_delivered(tmp_path / "state.db", ROWS)
        resend = asyncio.create_task(
            store.requeue(Selection(endpoint="hook", statuses=frozenset({"delivered"})))
        )
        await asyncio.sleep(0)  # the resend has asked the store thread for its first work
        await store.ingest("t", [event(1, "A")], checkpoint(1))
        assert not resend.done(), "the ingest waited for the whole resend"
        done = await resend
        assert done.requeued == ROWS
        assert len(await store.claim_due("hook", ROWS + 10, LEASE)) >= 1
    finally:
        await store.close()
