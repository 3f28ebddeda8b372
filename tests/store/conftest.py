"""The store contract runs against every engine: each test gets a fresh, open store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sftriggerd.store.base import Store
from sftriggerd.store.sqlite import SqliteStore


@pytest.fixture(params=["sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    engine: Store = SqliteStore(tmp_path / "state.db")
    await engine.open()
    try:
        yield engine
    finally:
        await engine.close()
