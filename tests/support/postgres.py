"""Fresh PostgreSQL databases for tests, on the server at $SFTRIGGERD_TEST_POSTGRES
(postgresql://postgres@127.0.0.1:5432 by default).

Each test gets a database of its own, dropped after it. Migrating a new database costs more
than copying one, so the schema is applied once per session to a template database and each
test's database is `CREATE DATABASE ... TEMPLATE` of it.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from sftriggerd.store.postgres import PostgresStore

SERVER = os.environ.get("SFTRIGGERD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


def database_url(name: str) -> str:
    return f"{SERVER}/{name}"


def _admin(statement: str) -> None:
    # Database-level statements run outside a transaction, on the maintenance database.
    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(statement.encode())


def create_database(template: str | None = None) -> str:
    """A new database (empty, or a copy of `template`); its name."""
    name = f"sftriggerd_test_{uuid.uuid4().hex[:16]}"
    _admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return name


def drop_database(name: str) -> None:
    # FORCE: a listener or pool a failed test left open must not keep the database alive.
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _migrate(url: str) -> None:
    store = PostgresStore(url)
    await store.open()
    await store.close()


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A database with the current schema and no data: what each test's database copies."""
    name = create_database()
    try:
        # On a thread of its own: the fixture may be first asked for inside a test's loop.
        with ThreadPoolExecutor(max_workers=1) as thread:
            thread.submit(lambda: asyncio.run(_migrate(database_url(name)))).result()
        yield name
    finally:
        drop_database(name)


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    """The URL of a fresh, migrated database of this test's own."""
    name = create_database(template=postgres_template)
    try:
        yield database_url(name)
    finally:
        drop_database(name)


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """The URL of a fresh database without any schema."""
    name = create_database()
    try:
        yield database_url(name)
    finally:
        drop_database(name)
