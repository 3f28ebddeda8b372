"""The store under faults: two processes starting at once on a new file, a store schema from
a newer version, an inspection command pointed at a mistyped path, and a pruner whose store
fails (again and again, half-way through, and once more after it recovered)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from sftriggerd.errors import StoreError
from sftriggerd.pruner import Pruner
from sftriggerd.store.base import Store
from sftriggerd.store.records import Delivered
from sftriggerd.store.sqlite import SqliteStore
from sftriggerd.store.sqlite import prune as sqlite_prune
from sftriggerd.store.sqlite.migrations import MIGRATIONS
from tests.acceptance.cli import run_cli
from tests.acceptance.test_store_commands import write_config
from tests.store.test_store_contract import LEASE, checkpoint, event

OPEN_AND_REPORT = """
import asyncio, sys
from sftriggerd.store.sqlite import SqliteStore

async def main() -> None:
    store = SqliteStore(sys.argv[1])
    print("opening", flush=True)
    await store.open()
    print("version", await store.schema_version(), flush=True)
    await store.close()

asyncio.run(main())
"""


def child_env() -> dict[str, str]:
    daemon = str(Path(__file__).resolve().parents[2] / "daemon")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([daemon, os.environ.get("PYTHONPATH", "")])}


def test_two_processes_starting_on_one_file_migrate_it_once_and_both_run(tmp_path: Path) -> None:
    """Both read "no schema yet" while a third connection holds the write lock (as a
    first start that created only the version table leaves the file), then both migrate."""
    path = tmp_path / "state.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as holder:
        holder.execute("PRAGMA journal_mode=WAL")
        holder.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        holder.execute("BEGIN IMMEDIATE")
        children = [
            subprocess.Popen(
                [sys.executable, "-c", OPEN_AND_REPORT, str(path)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=child_env(),
            )
            for _ in range(2)
        ]
        for child in children:
            assert child.stdout is not None and child.stdout.readline() == "opening\n"
        time.sleep(0.8)  # both reach the write lock and wait on it
        holder.execute("COMMIT")
    results = [child.communicate(timeout=30) for child in children]
    for child, (out, err) in zip(children, results, strict=True):
        assert child.returncode == 0, err
        assert out.strip() == f"version {len(MIGRATIONS)}"
    with closing(sqlite3.connect(path)) as db:
        rows = [r[0] for r in db.execute("SELECT version FROM schema_version ORDER BY 1")]
    assert rows == list(range(1, len(MIGRATIONS) + 1))
    asyncio.run(restart_and_ingest(path))


async def restart_and_ingest(path: Path) -> None:
    """The next start after the race finds a whole store and works on it."""
    store = SqliteStore(path)
    await store.open(create=False)
    try:
        await store.ingest("t", [event(1)], checkpoint(1))
        [claim] = await store.claim_due("hook", 1, LEASE)
        assert claim.event_id == "evt_1"
    finally:
        await store.close()


async def store_at_current_schema(path: Path) -> None:
    store = SqliteStore(path)
    await store.open()
    await store.close()


def test_an_older_binary_refuses_a_store_at_current_schema_and_says_what_to_do(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    asyncio.run(store_at_current_schema(tmp_path / "state.db"))
    newer = len(MIGRATIONS) + 1
    with closing(sqlite3.connect(tmp_path / "state.db")) as db, db:
        db.execute("INSERT INTO schema_version (version) VALUES (?)", (newer,))
    refusal = (
        f"sftriggerd: error: sqlite store {tmp_path}/state.db: store schema {newer} is newer"
        f" than this sftriggerd supports ({len(MIGRATIONS)}); upgrade sftriggerd"
    )
    for command in (["deliveries", "list"], ["run"]):
        result = run_cli(*command, "--config", str(config), env=child_env())
        assert result.returncode == 1, result
        assert "Traceback" not in result.stderr
        # `run` also logs it (one JSON line); the last line is the same for every command.
        assert result.stderr.strip().splitlines()[-1] == refusal
        if command != ["run"]:
            assert len(result.stderr.strip().splitlines()) == 1
    with closing(sqlite3.connect(tmp_path / "state.db")) as db:
        assert db.execute("SELECT max(version) FROM schema_version").fetchone() == (newer,)


@pytest.mark.parametrize(
    "command",
    [
        ["deliveries", "list"],
        ["deliveries", "redrive", "--id", "1"],
        ["deliveries", "redrive", "--endpoint", "hook", "--status", "dead"],
        ["triggers", "status"],
    ],
)
def test_an_inspection_command_on_a_mistyped_store_path_fails_and_creates_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("/state.db", "/typo/stat.db"))
    result = run_cli(*command, "--config", str(config), env=child_env())
    assert result.returncode == 1, result
    [line] = result.stderr.strip().splitlines()
    assert f"no sqlite store at {tmp_path}/typo/stat.db" in line
    assert not (tmp_path / "typo").exists()


async def delivered_history(store: Store, size: int, first: int = 0) -> None:
    events = [event(n, record=f"r{n}") for n in range(first, first + size)]
    await store.ingest("t", events, checkpoint(first + size))
    claims = await store.claim_due("hook", size, LEASE)
    assert all(await store.record_outcomes([(c, Delivered(status=200)) for c in claims]))


def break_deletes(path: Path, from_id: int = 0) -> None:
    """A real SQLite error for every delete of a delivery whose id is at least `from_id`."""
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(
            f"CREATE TRIGGER no_prune BEFORE DELETE ON deliveries WHEN old.id >= {from_id}"
            " BEGIN SELECT RAISE(ABORT, 'injected: disk I/O error'); END"
        )


def heal(path: Path) -> None:
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("DROP TRIGGER no_prune")


def delivery_count(path: Path) -> int:
    with closing(sqlite3.connect(path)) as db:
        return int(db.execute("SELECT count(*) FROM deliveries").fetchone()[0])


async def until(condition: Callable[[], bool], task: asyncio.Task[None], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert not task.done(), task  # the part ended: that is the bug
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_the_pruner_outlives_store_errors_and_prunes_once_the_store_heals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_prune, "BATCH_ROWS", 10)
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    await store.open()
    await delivered_history(store, 35)
    # Fails half-way: the first batches go, then every try fails at id 21.
    break_deletes(path, from_id=21)
    pruner = Pruner(
        store,
        retention=timedelta(0),
        every=timedelta(seconds=0.3),
        retry_after=timedelta(seconds=0.02),
    )
    stopping = asyncio.Event()
    task = asyncio.create_task(pruner.run(stopping))
    try:
        await until(lambda: pruner.failures >= 3, task, timeout_s=5)
        assert delivery_count(path) == 15  # ids 21..35: the batches before the fault stayed done
        heal(path)
        await until(lambda: pruner.failures == 0 and delivery_count(path) == 0, task, 5)
        # The next fault, after a quiet run: the same again.
        await delivered_history(store, 5, first=100)
        break_deletes(path)
        await until(lambda: pruner.failures >= 2, task, timeout_s=5)
        assert delivery_count(path) == 5
        heal(path)
        await until(lambda: pruner.failures == 0 and delivery_count(path) == 0, task, 5)
    finally:
        stopping.set()
        await asyncio.wait_for(task, 5)
        await store.close()
    assert task.exception() is None


async def test_a_prune_that_fails_half_way_keeps_what_it_did_and_the_store_works_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_prune, "BATCH_ROWS", 10)
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    await store.open()
    try:
        await delivered_history(store, 25)
        break_deletes(path, from_id=11)
        with pytest.raises(StoreError, match="injected"):
            await store.prune(timedelta(0))
        assert delivery_count(path) == 15
        # The store is not left inside a transaction: ingest and claim still work.
        await store.ingest("t", [event(500, record="x")], checkpoint(500))
        [claim] = await store.claim_due("hook", 10, LEASE)
        assert claim.event_id == "evt_500"
        heal(path)
        assert await store.prune(timedelta(0)) == 15
    finally:
        await store.close()
