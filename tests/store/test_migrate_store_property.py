"""Whatever came from outside (ids, bodies, positions, poison text) arrives unchanged: a
SQLite store moved through the in-memory engine into a new SQLite file shows the same."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sftriggerd.commands_transfer import copy
from sftriggerd.store.base import Store
from sftriggerd.store.memory import MemoryStore
from sftriggerd.store.records import Checkpoint, NewEvent, PoisonEvent
from sftriggerd.store.sqlite import SqliteStore

texts = st.text(max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
events = st.lists(
    st.tuples(texts, st.none() | texts, st.binary(max_size=200), st.integers(0, 10**9)),
    max_size=6,
    unique_by=lambda item: item[0],
)


async def shown(store: Store) -> tuple[Any, ...]:
    rows = await store.list_deliveries(limit=1000)
    return (
        await store.checkpoints(),
        rows,
        [await store.get_delivery_detail(row.id) for row in rows],
        await store.list_poison(),
    )


async def moved(
    path: Path,
    stored: list[tuple[str, str | None, bytes, int]],
    position: dict[str, Any],
    poison: tuple[str, str],
) -> None:
    new = [
        NewEvent(
            event_id=event_id,
            record_id=record_id,
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros),
            body=body,
            endpoints=("a", "b"),
            ordered_endpoints=frozenset({"a"}),
            order_key=None if record_id is None else f"t\x1f{record_id}",
        )
        for event_id, record_id, body, micros in stored
    ]
    source = SqliteStore(path / "source.db")
    middle = MemoryStore()
    target = SqliteStore(path / "target.db")
    for store in (source, middle, target):
        await store.open()
    try:
        await source.ingest("t", new, Checkpoint("t", position), poison=[PoisonEvent("t", *poison)])
        await copy(source, middle, batch_rows=2)
        await copy(middle, target, batch_rows=3)
        assert await shown(target) == await shown(source)
    finally:
        for store in (source, middle, target):
            await store.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events, st.dictionaries(texts, json_values, max_size=4), st.tuples(texts, texts))
def test_what_came_from_outside_moves_unchanged(
    stored: list[tuple[str, str | None, bytes, int]],
    position: dict[str, Any],
    poison: tuple[str, str],
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(moved(Path(directory), stored, position, poison))
