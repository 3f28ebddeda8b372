"""The store check: it opens, it takes a write (rolled back), and its schema version.

A store that does not exist yet is made by the daemon's first run, so it is a warning; the
doctor never makes nor migrates one. An older schema is a warning too: the doctor of a new
release runs against the store an older daemon still uses, and migrated, that daemon would
refuse it at its next start.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ..config.settings import StoreSettings
from ..errors import SftriggerdError, StoreError
from ..store import store_from_settings
from ..store.base import Store
from ..urls import store_url_shown
from .checks import Check, failed, ok, warning

NAME = "store"


async def check_store(settings: StoreSettings) -> Check:
    shown = store_url_shown(settings.url)
    if settings.engine == "sqlite":
        missing = _sqlite_missing(Path(settings.sqlite_path), shown)
        if missing is not None:
            return missing
    store = store_from_settings(settings)
    try:
        await store.open(create=False, migrate=False)
    except SftriggerdError as exc:
        if settings.engine == "postgresql" and await _postgres_empty(store):
            return _not_yet(shown)
        return failed(NAME, f"{shown}: {exc}", "check store.url and the store's permissions")
    try:
        version = await store.schema_version()
        if settings.engine == "sqlite":
            _sqlite_write(Path(settings.sqlite_path))
        else:
            await _postgres_write(store)
    except (SftriggerdError, sqlite3.Error, OSError) as exc:
        return failed(
            NAME,
            f"{shown}: opens but cannot be written: {exc}",
            "the daemon's user must be able to write the file and its directory"
            if settings.engine == "sqlite"
            else "point store.url at the primary, as a user that may write the sftriggerd tables",
        )
    finally:
        await store.close()
    supported = store.supported_schema_version()
    if version < supported:
        return warning(
            NAME,
            f"{shown}: opens, writable, schema {version}, this sftriggerd migrates it to"
            f" {supported} at its next start (back it up first)",
            "an older sftriggerd cannot use the store once it is migrated",
        )
    return ok(NAME, f"{shown}: opens, writable, schema version {version}")


def _sqlite_missing(path: Path, shown: str) -> Check | None:
    """A warning when the file is not there but could be made; failed when it could not."""
    if path.exists():
        return None
    parent = path.parent if str(path.parent) else Path(".")
    # The nearest directory that exists is where the daemon would make the rest.
    nearest = parent
    while not nearest.exists() and nearest != nearest.parent:
        nearest = nearest.parent
    if not nearest.is_dir() or not os.access(nearest, os.W_OK | os.X_OK):
        what = "is not a directory" if not nearest.is_dir() else "is not writable"
        return failed(
            NAME,
            f"{shown}: no store, and it cannot be made: {nearest} {what}",
            "point store.url at a directory the daemon's user can write",
        )
    return _not_yet(shown)


def _not_yet(shown: str) -> Check:
    return warning(
        NAME,
        f"{shown}: no store yet; the daemon makes it on its first run",
        "or run `sftriggerd migrate --config PATH` now",
    )


async def _postgres_empty(store: Store) -> bool:
    """Whether the database answers and holds no sftriggerd schema at all."""
    import psycopg

    from ..store.postgres import PostgresStore
    from ..store.postgres.schema import schema_version

    if not isinstance(store, PostgresStore):
        return False
    try:
        conn = await store.connect()
    except psycopg.Error:
        return False
    try:
        return await schema_version(conn) == 0
    except psycopg.Error:
        return False
    finally:
        await conn.close()


async def _postgres_write(store: Store) -> None:
    """An UPDATE that matches no row, rolled back: refused by a read-only server (a standby,
    `default_transaction_read_only`) or a user without the privilege, as a real write is."""
    import psycopg  # only for a postgresql:// store

    from ..store.postgres import PostgresStore

    assert isinstance(store, PostgresStore), "called for a postgresql:// store only"
    conn = await store.connect()
    try:
        async with conn.transaction(force_rollback=True):
            await conn.execute("UPDATE sftriggerd_schema SET version = version WHERE false")
    except psycopg.Error as exc:
        raise StoreError(str(exc).strip()) from exc
    finally:
        await conn.close()


def _sqlite_write(path: Path) -> None:
    """A write in a transaction rolled back: takes the write lock and touches the journal."""
    uri = path.resolve().as_uri() + "?mode=rw"
    db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=5)
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("CREATE TABLE doctor_write_probe (x INTEGER)")
        db.execute("ROLLBACK")
    finally:
        db.close()
