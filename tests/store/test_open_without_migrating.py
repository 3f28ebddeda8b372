"""`Store.open(migrate=False)`: the store as found, nothing written. `sftriggerd doctor` opens
it so, and says what the next start of this sftriggerd will do to an older schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sftriggerd.config.settings import StoreSettings
from sftriggerd.doctor.store_checks import check_store
from sftriggerd.errors import StoreError
from sftriggerd.store.memory import MemoryStore
from sftriggerd.store.postgres import PostgresStore
from sftriggerd.store.sqlite import SqliteStore
from sftriggerd.store.sqlite.migrations import MIGRATIONS
from tests.store.test_sqlite_migrations import old_file


async def test_an_older_sqlite_store_opens_at_its_own_version(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old_file(path, 2)
    store = SqliteStore(path)
    await store.open(create=False, migrate=False)
    try:
        assert await store.schema_version() == 2
        assert store.supported_schema_version() == len(MIGRATIONS) > 2
    finally:
        await store.close()


async def test_the_doctor_warns_that_the_next_start_migrates_an_older_store(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    old_file(path, 2)
    check = await check_store(StoreSettings(url=f"sqlite:///{path}"))
    assert check.status == "warning", check
    assert (
        f"schema 2, this sftriggerd migrates it to {len(MIGRATIONS)} at its next start"
        " (back it up first)" in check.detail
    )


async def test_a_newer_sqlite_store_is_refused_and_the_doctor_fails(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    store = SqliteStore(path)
    await store.open()
    await store.close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO schema_version (version) VALUES (?)", (len(MIGRATIONS) + 1,))
    with pytest.raises(StoreError, match="newer than this sftriggerd supports"):
        await SqliteStore(path).open(create=False, migrate=False)
    check = await check_store(StoreSettings(url=f"sqlite:///{path}"))
    assert check.status == "failed", check


async def test_a_file_without_a_store_is_not_made_one(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    with pytest.raises(StoreError, match="holds no sftriggerd store"):
        await SqliteStore(path).open(create=True, migrate=False)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == []


async def test_a_postgres_database_without_a_store_is_not_made_one(
    empty_postgres_url: str,
) -> None:
    store = PostgresStore(empty_postgres_url)
    with pytest.raises(StoreError, match="holds no sftriggerd store"):
        await store.open(create=True, migrate=False)
    # Still empty: an open that migrates but may not create refuses it too.
    with pytest.raises(StoreError, match="holds no sftriggerd store"):
        await store.open(create=False)


async def test_a_memory_store_not_made_yet_is_not_made_without_migrating() -> None:
    store = MemoryStore()
    with pytest.raises(StoreError):
        await store.open(create=True, migrate=False)
    await store.open()
    await store.close()
    await store.open(create=False, migrate=False)
    assert await store.schema_version() == store.supported_schema_version()


async def test_inspection_commands_refuse_an_older_store_and_leave_it_as_found(
    tmp_path: Path,
) -> None:
    from sftriggerd import commands
    from sftriggerd.config import parse_settings

    path = tmp_path / "old.db"
    old_file(path, 2)
    settings = parse_settings(
        f"""
salesforce:
  auth: {{client_id: c, client_secret: s, username: u, password: p}}
store: {{url: "sqlite:///{path}"}}
""",
        environ={},
    )
    with pytest.raises(StoreError, match=r"older than this sftriggerd's.*sftriggerd migrate"):
        await commands.list_deliveries(settings, None, None, False, 10)
    with sqlite3.connect(path) as db:
        (found,) = db.execute("SELECT max(version) FROM schema_version").fetchone()
    assert found == 2, "nothing migrated"
    assert "schema at version" in await commands.migrate(settings)  # `migrate` does
    assert await commands.list_deliveries(settings, None, None, False, 10) is not None
