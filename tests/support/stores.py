"""A fresh, open store per test, on every engine the store contract covers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sftriggerd.store.sqlite import SqliteStore

ENGINES = ["sqlite"]


@pytest.fixture(params=ENGINES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqliteStore]:
    engine = SqliteStore(tmp_path / "state.db")
    await engine.open()
    try:
        yield engine
    finally:
        await engine.close()
