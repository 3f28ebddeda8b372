"""Opening a store file: racing first starts, a schema from a newer version, a path that
does not exist when the caller only inspects."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from sftriggerd.errors import StoreError
from sftriggerd.store.sqlite import SqliteStore
from sftriggerd.store.sqlite.migrations import MIGRATIONS


def versions(path: Path) -> list[int]:
    with closing(sqlite3.connect(path)) as db:
        return [row[0] for row in db.execute("SELECT version FROM schema_version ORDER BY 1")]


async def test_two_stores_opening_one_new_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    for attempt in range(8):
        path = tmp_path / f"state{attempt}.db"
        first, second = SqliteStore(path), SqliteStore(path)
        # Each store has a thread of its own: the two migrations really run at once.
        await asyncio.gather(first.open(), second.open())
        try:
            assert await first.schema_version() == await second.schema_version() == len(MIGRATIONS)
        finally:
            await first.close()
            await second.close()
        assert versions(path) == list(range(1, len(MIGRATIONS) + 1))


async def newer_file(path: Path) -> int:
    store = SqliteStore(path)
    await store.open()
    await store.close()
    newer = len(MIGRATIONS) + 1
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("INSERT INTO schema_version (version) VALUES (?)", (newer,))
        db.execute("CREATE TABLE from_the_future (x INTEGER)")
    return newer


async def test_a_newer_schema_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    newer = await newer_file(path)
    store = SqliteStore(path)
    with pytest.raises(StoreError) as raised:
        await store.open()
    assert (
        f"store schema {newer} is newer than this sftriggerd supports ({len(MIGRATIONS)});"
        " upgrade sftriggerd"
    ) in str(raised.value)
    assert str(path) in str(raised.value)
    assert not await store.ping()  # closed, not left half open
    assert versions(path)[-1] == newer
    # Refused again on the next start: nothing was written in between.
    with pytest.raises(StoreError, match="newer than this sftriggerd supports"):
        await SqliteStore(path).open(create=False)


async def test_without_create_a_missing_file_is_an_error_and_nothing_is_made(
    tmp_path: Path,
) -> None:
    path = tmp_path / "typo" / "state.db"
    with pytest.raises(StoreError, match="no sqlite store at"):
        await SqliteStore(path).open(create=False)
    assert not path.parent.exists()


async def test_without_create_a_file_that_is_no_store_is_an_error_and_stays_so(
    tmp_path: Path,
) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with pytest.raises(StoreError, match="holds no sftriggerd store"):
        await SqliteStore(path).open(create=False)
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)


async def test_without_create_an_existing_store_opens_and_works(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    made = SqliteStore(path)
    await made.open()
    await made.close()
    store = SqliteStore(path)
    await store.open(create=False)
    try:
        assert await store.schema_version() == len(MIGRATIONS)
        assert await store.list_deliveries() == []
    finally:
        await store.close()
