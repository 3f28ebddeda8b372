"""A fresh, open store per test, on every engine the store contract covers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sftriggerd.store.base import Store
from sftriggerd.store.postgres import PostgresStore
from sftriggerd.store.sqlite import SqliteStore

ENGINES = ["sqlite", "postgresql"]


@pytest.fixture(params=ENGINES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    engine: Store
    if request.param == "postgresql":
        engine = PostgresStore(request.getfixturevalue("postgres_url"))
    else:
        engine = SqliteStore(tmp_path / "state.db")
    await engine.open()
    try:
        yield engine
    finally:
        await engine.close()
