"""`sftriggerd migrate-store` through the console script: a SQLite file moved into a fresh
PostgreSQL database, what it refuses, and a run killed part-way that leaves the target empty
for the next one."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from sftriggerd.store.postgres import PostgresStore
from sftriggerd.store.records import Checkpoint, NewEvent
from sftriggerd.store.sqlite import SqliteStore
from tests.acceptance.cli import run_cli, sftriggerd_command
from tests.store.populated import populate
from tests.support.waiting import eventually

PASSWORD = "s3cret-never-shown"


def with_password(url: str) -> str:
    """The URL with a password PostgreSQL's trust authentication ignores: what must never
    be printed."""
    return url.replace("postgres@", f"postgres:{PASSWORD}@")


def populated_file(path: Path) -> None:
    async def fill() -> None:
        store = SqliteStore(path)
        await store.open()
        try:
            await populate(store)
        finally:
            await store.close()

    asyncio.run(fill())


def test_moves_a_sqlite_file_into_postgresql(tmp_path: Path, postgres_url: str) -> None:
    db = tmp_path / "state.db"
    populated_file(db)
    target = with_password(postgres_url)
    moved = run_cli("migrate-store", "--from", f"sqlite:///{db}", "--to", target, "--json")
    assert moved.returncode == 0, moved.stderr
    summary = json.loads(moved.stdout)
    assert summary["to"] == postgres_url.replace("postgres@", "")
    assert (summary["checkpoints"], summary["events"], summary["poison"]) == (2, 13, 2)
    assert summary["deliveries"] == {
        "total": 26,
        "pending": 24,
        "in_flight_made_pending": 1,
        "delivered": 1,
        "dead": 1,
    }
    assert summary["attempts"] == 3
    again = run_cli("migrate-store", "--from", f"sqlite:///{db}", "--to", target)
    assert again.returncode == 2
    assert "already holds" in again.stderr and "empty store only" in again.stderr
    for result in (moved, again):
        assert PASSWORD not in result.stdout + result.stderr
        assert "Traceback" not in result.stderr

    async def listed() -> int:
        store = PostgresStore(postgres_url)
        await store.open(create=False)
        try:
            return len(await store.list_deliveries(limit=1000))
        finally:
            await store.close()

    assert asyncio.run(listed()) == 26


def test_the_text_summary_counts_each_table(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    populated_file(db)
    moved = run_cli(
        "migrate-store", "--from", f"sqlite:///{db}", "--to", f"sqlite:///{tmp_path}/copy.db"
    )
    assert moved.returncode == 0, moved.stderr
    lines = {line.split()[0]: line.split()[1] for line in moved.stdout.splitlines()[1:-1]}
    assert lines == {
        "checkpoints": "2",
        "events": "13",
        "deliveries": "26",
        "attempts": "3",
        "poison": "2",
    }
    assert "set store.url to sqlite:///" in moved.stdout


def test_refusals_exit_2_with_one_line(tmp_path: Path, postgres_url: str) -> None:
    missing = tmp_path / "absent.db"
    no_source = run_cli("migrate-store", "--from", f"sqlite:///{missing}", "--to", postgres_url)
    assert no_source.returncode == 2 and "the source must exist" in no_source.stderr
    assert not missing.exists()
    same = run_cli("migrate-store", "--from", with_password(postgres_url), "--to", postgres_url)
    assert same.returncode == 2 and "the same store" in same.stderr
    assert PASSWORD not in same.stderr
    scheme = run_cli("migrate-store", "--from", "mysql://h/db", "--to", postgres_url)
    assert scheme.returncode == 2 and "--from" in scheme.stderr
    for result in (no_source, same, scheme):
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# Enough rows that the copy is still running when the test sees its first rows arrive.
BIG_EVENTS = 20_000


async def big_file(path: Path) -> None:
    store = SqliteStore(path)
    await store.open()
    try:
        for start in range(0, BIG_EVENTS, 2000):
            events = [
                NewEvent(
                    event_id=f"evt_{n}",
                    record_id=f"001{n % 50}",
                    occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
                    body=b'{"n": %d, "pad": "%s"}' % (n, b"x" * 300),
                    endpoints=("a", "b"),
                    ordered_endpoints=frozenset({"a"}),
                    order_key=f"t/001{n % 50}",
                )
                for n in range(start, start + 2000)
            ]
            await store.ingest("t", events, Checkpoint("t", {"replay_id": start}))
    finally:
        await store.close()


def stored_rows(url: str) -> tuple[int, int]:
    """(bytes the events table takes on disk, rows any session can see): a transaction
    still writing grows the first, and only its commit changes the second."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT pg_relation_size('events'),"
            " (SELECT count(*) FROM events) + (SELECT count(*) FROM deliveries)"
            " + (SELECT count(*) FROM checkpoints)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def test_a_killed_run_leaves_the_target_empty_for_the_next(
    tmp_path: Path, postgres_url: str
) -> None:
    db = tmp_path / "state.db"
    await big_file(db)
    command = [*sftriggerd_command(), "migrate-store", "--from", f"sqlite:///{db}"]
    child = subprocess.Popen(
        [*command, "--to", postgres_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        # Killed once the first rows are written and before the commit.
        await eventually(lambda: stored_rows(postgres_url)[0] > 0, timeout_s=60)
    finally:
        child.kill()
        child.communicate()
    assert child.returncode != 0, "the copy finished before it could be killed"
    assert stored_rows(postgres_url)[1] == 0
    retried = run_cli("migrate-store", "--from", f"sqlite:///{db}", "--to", postgres_url, "--json")
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout)["events"] == BIG_EVENTS
    assert stored_rows(postgres_url)[1] == 3 * BIG_EVENTS + 1
