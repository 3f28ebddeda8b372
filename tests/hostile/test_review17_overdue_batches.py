"""The expiry sweep over a backlog that is all past max_age (an endpoint down for longer than
its max_age): each batch of EXPIRE_BATCH must cost what it expires. Schema 8's index holds
the open deliveries by (endpoint, retry_since), but the sweep takes them `ORDER BY id`, so
every batch reads every overdue row and sorts them to take the first 1000: at a million
overdue, 0.22 - 0.30 s a batch on the store's one thread (benchmark below), about a thousand
batches, with every other endpoint's claims and outcomes (and the outbox count) queued
behind each. Work is counted in SQLite virtual-machine steps, which is exact, not timing.

Measured with: a million pending rows of one endpoint, all overdue, three batches of
expiry.expire_overdue(db, "a", cutoff, "x", now, 1000): 0.304 s, 0.255 s, 0.221 s; a whole
sweep of 200,000 overdue, 201 batches: 6.5 s (worst batch 0.09 s), and 0.8 s (worst
0.007 s) taking them `ORDER BY retry_since, id`, the index's own order."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from sftriggerd.delivery.expiry import EXPIRE_BATCH
from sftriggerd.store.sqlite import expiry, ops

NOW = datetime.fromtimestamp(10**9, UTC)


def overdue_store(path: Path, overdue: int) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        ops.migrate(db)
        db.execute("BEGIN")
        db.execute(
            "INSERT INTO events (trigger, event_id, occurred_at, body, created_at)"
            " VALUES ('t', 'e', 0, x'', 0)"
        )
        db.executemany(
            "INSERT INTO deliveries (event_seq, endpoint, status, next_attempt_at, created_at,"
            " retry_since) VALUES (1, 'a', 'pending', ?, 0, ?)",
            [(n, n) for n in range(overdue)],
        )
        db.execute("COMMIT")


def steps_of_one_batch(path: Path) -> int:
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.set_progress_handler(count, 1)
        assert expiry.expire_overdue(db, "a", NOW, "too old", NOW, EXPIRE_BATCH) == EXPIRE_BATCH
    return steps


def test_a_batch_of_the_expiry_sweep_costs_what_it_expires_not_the_overdue_backlog(
    tmp_path: Path,
) -> None:
    overdue_store(tmp_path / "short.db", 2 * EXPIRE_BATCH)
    overdue_store(tmp_path / "long.db", 20 * EXPIRE_BATCH)
    short, long = (
        steps_of_one_batch(tmp_path / "short.db"),
        steps_of_one_batch(tmp_path / "long.db"),
    )
    assert long < short * 1.5, (short, long)
