"""A fresh, open store per test, on every engine the store contract covers.

Each engine runs on the test's `clock` (see `clock.ShiftedClock`). To add an engine, name
it in ENGINES and build it in `_build`. The PostgreSQL engine gets a database of its own
per test, copied from a migrated template and dropped after it (`postgres`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sftriggerd.store.base import Store
from sftriggerd.store.memory import MemoryStore
from sftriggerd.store.postgres import PostgresStore
from sftriggerd.store.sqlite import SqliteStore
from tests.support.clock import ShiftedClock

ENGINES = ["sqlite", "memory", "postgresql"]


def _build(
    engine: str, clock: ShiftedClock, request: pytest.FixtureRequest, tmp_path: Path
) -> Store:
    if engine == "sqlite":
        return SqliteStore(tmp_path / "state.db", clock=clock)
    if engine == "memory":
        return MemoryStore(clock=clock)
    if engine == "postgresql":
        # The database's clock, shifted as far as the test moved its clock.
        url = request.getfixturevalue("postgres_url")
        return PostgresStore(url, clock_shift=lambda: clock.offset)
    raise ValueError(f"no store engine {engine!r} in the test support")


@pytest.fixture(params=ENGINES)
async def store(
    request: pytest.FixtureRequest, clock: ShiftedClock, tmp_path: Path
) -> AsyncIterator[Store]:
    engine = _build(request.param, clock, request, tmp_path)
    await engine.open()
    try:
        yield engine
    finally:
        await engine.close()
