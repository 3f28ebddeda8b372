"""`sftriggerd doctor`'s store check promises to open the store "without creating or
migrating it" (docs/doctor.md): an operator runs the new release's doctor against the store
the running, older daemon still uses, before upgrading. A store one schema behind must come
out of the check as it went in; migrated, the older daemon refuses it at its next start
("newer than this sftriggerd supports"), so a restart or a rollback stops it for good."""

from __future__ import annotations

from pathlib import Path

import pytest

from sftriggerd.config.settings import StoreSettings
from sftriggerd.doctor.store_checks import check_store
from sftriggerd.store.postgres import PostgresStore
from sftriggerd.store.postgres import schema as postgres_schema
from sftriggerd.store.sqlite import SqliteStore, ops
from sftriggerd.store.sqlite.migrations import MIGRATIONS


async def test_the_store_check_leaves_an_older_sqlite_store_at_its_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.db"
    previous = len(MIGRATIONS) - 1
    with monkeypatch.context() as older_release:
        older_release.setattr(ops, "MIGRATIONS", MIGRATIONS[:previous])
        store = SqliteStore(path)
        await store.open()
        await store.close()

    await check_store(StoreSettings(url=f"sqlite:///{path}"))

    with monkeypatch.context() as older_release:
        older_release.setattr(ops, "MIGRATIONS", MIGRATIONS[:previous])
        again = SqliteStore(path)
        await again.open(create=False)  # the older daemon's next start
        try:
            assert await again.schema_version() == previous
        finally:
            await again.close()


async def test_the_store_check_leaves_an_older_postgres_store_at_its_schema(
    empty_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = postgres_schema.migrations()
    previous = len(steps) - 1
    with monkeypatch.context() as older_release:
        older_release.setattr(postgres_schema, "migrations", lambda: steps[:previous])
        store = PostgresStore(empty_postgres_url)
        await store.open()
        await store.close()

    await check_store(StoreSettings(url=empty_postgres_url))

    with monkeypatch.context() as older_release:
        older_release.setattr(postgres_schema, "migrations", lambda: steps[:previous])
        again = PostgresStore(empty_postgres_url)
        await again.open(create=False)  # the older daemon's next start
        try:
            assert await again.schema_version() == previous
        finally:
            await again.close()
