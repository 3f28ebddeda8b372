"""`migrate-store`: a whole store moved to another engine, compared through the Store
interface; a target that is not empty, or the same store twice, or a missing source refused;
a move that fails part-way leaves the target empty for the next run."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from sftriggerd.commands_transfer import copy, migrate_store
from sftriggerd.delivery import Dispatcher
from sftriggerd.errors import StoreError, UsageError
from sftriggerd.metrics import Metrics
from sftriggerd.store.base import Store
from sftriggerd.store.leadership import LeaseLostError
from sftriggerd.store.memory import MemoryStore
from sftriggerd.store.postgres import PostgresStore
from sftriggerd.store.postgres.schema import migrations
from sftriggerd.store.records import Checkpoint, DeliveryRow, NewEvent
from sftriggerd.store.sqlite import SqliteStore
from sftriggerd.store.transfer import DumpBatch, TargetNotEmptyError
from tests.delivery.rig import running
from tests.store.populated import ORDERED, RETRY_DELAY, endpoints, populate
from tests.support.clock import ShiftedClock
from tests.support.receiver import Receiver
from tests.support.waiting import eventually


@asynccontextmanager
async def opened(store: Store, create: bool = True) -> AsyncIterator[Store]:
    await store.open(create=create)
    try:
        yield store
    finally:
        await store.close()


async def everything(store: Store, in_flight: str) -> dict[str, object]:
    """What the store shows through its interface; the delivery that was in flight (event
    `in_flight`) as a move leaves it: pending, due at once (whatever time that is)."""

    def moved(row: DeliveryRow) -> DeliveryRow:
        if row.event_id == in_flight and row.endpoint == ORDERED:
            return replace(row, status="pending", next_attempt_at=None)
        return row

    rows = await store.list_deliveries(limit=1000)
    details = [await store.get_delivery_detail(row.id) for row in rows]
    return {
        "checkpoints": sorted(await store.checkpoints(), key=lambda c: c.trigger),
        "deliveries": [moved(row) for row in rows],
        "details": [None if d is None else replace(d, delivery=moved(d.delivery)) for d in details],
        "counts": await store.outbox_counts(),
        "poison": await store.list_poison(),
        "records": await store.last_changes("accounts", ["001A0", "001A1", "001A2"]),
    }


async def test_sqlite_moves_to_postgresql_whole(tmp_path: Path, postgres_url: str) -> None:
    async with opened(SqliteStore(tmp_path / "state.db")) as source:
        populated = await populate(source)
        before = await everything(source, populated.in_flight)
        async with opened(PostgresStore(postgres_url)) as target:
            counts = await copy(source, target, batch_rows=3)
            after = await everything(target, populated.in_flight)
            rows = {row.event_id: row for row in await target.list_deliveries(endpoint=ORDERED)}
            due_in = await target.next_due_in(ORDERED)
        assert await source.list_deliveries("in_flight") != []  # the source only read
    assert after == before
    assert (counts.checkpoints, counts.events, counts.poison) == (2, 13, 2)
    assert (counts.deliveries, counts.delivered, counts.dead) == (26, 1, 1)
    assert (counts.in_flight_made_pending, counts.attempts) == (1, 3)
    left = rows[populated.in_flight]
    assert (left.status, left.attempts) == ("pending", 0)
    assert due_in is not None and due_in <= timedelta(0)  # due at once on the target
    retrying = rows[populated.retrying]
    assert retrying.next_attempt_at is not None
    assert retrying.next_attempt_at - retrying.created_at >= RETRY_DELAY - timedelta(seconds=5)


async def test_the_target_delivers_in_per_record_order(
    tmp_path: Path, postgres_url: str, receiver: Receiver, clock: ShiftedClock
) -> None:
    async with opened(SqliteStore(tmp_path / "state.db", clock=clock)) as source:
        populated = await populate(source)
        expected = [
            row.event_id for row in await source.list_deliveries(endpoint=ORDERED, limit=1000)
        ]
    target = PostgresStore(postgres_url, clock_shift=lambda: clock.offset)
    async with opened(SqliteStore(tmp_path / "state.db"), create=False) as source:
        async with opened(target):
            await copy(source, target)
    clock.advance(RETRY_DELAY)  # the retry comes due
    async with opened(target):
        hook = endpoints(receiver.url)[0]
        async with running(Dispatcher(target, [hook], Metrics(), jitter=lambda: 0.5)):

            async def drained() -> bool:
                counts = (await target.outbox_counts()).get(ORDERED)
                return counts is not None and counts.pending == 0

            await eventually(drained, timeout_s=20)
        new_ids = [row.id for row in await target.list_deliveries(limit=1000)]
    finished = {populated.delivered, populated.dead}
    sent = [event_id for event_id in reversed(expected) if event_id not in finished]
    assert sorted(receiver.ids()) == sorted(sent)
    for record in ("001A0", "001A1", "001A2", "003C0", "003C1"):
        # Each record's changes arrive in the order they were stored (ids ascending).
        of_record = [e for e in sent if e in _events_of(record)]
        assert [e for e in receiver.ids() if e in of_record] == of_record
    assert populated.retrying in receiver.ids() and populated.in_flight in receiver.ids()
    assert len(new_ids) == len(set(new_ids))


def _events_of(record: str) -> set[str]:
    trigger, count, modulo = ("accounts", 9, 3) if record.startswith("001") else ("contacts", 4, 2)
    return {f"evt_{trigger}_{n}" for n in range(count) if n % modulo == int(record[-1])}


async def test_postgresql_moves_to_sqlite(tmp_path: Path, postgres_url: str) -> None:
    async with opened(PostgresStore(postgres_url)) as source:
        populated = await populate(source)
        before = await everything(source, populated.in_flight)
        async with opened(SqliteStore(tmp_path / "moved.db")) as target:
            await copy(source, target, batch_rows=5)
            after = await everything(target, populated.in_flight)
            # The next ingest numbers on after the ids kept.
            await target.ingest("t", [], Checkpoint("t", {"n": 1}))
    assert after == before


async def test_memory_moves_both_ways(tmp_path: Path) -> None:
    async with opened(MemoryStore()) as source:
        populated = await populate(source)
        before = await everything(source, populated.in_flight)
        async with opened(SqliteStore(tmp_path / "moved.db")) as middle:
            await copy(source, middle)
            async with opened(MemoryStore()) as target:
                await copy(middle, target, batch_rows=2)
                after = await everything(target, populated.in_flight)
                [claimed] = await target.claim_due("plain", 1, timedelta(minutes=1))
    assert after == before
    assert claimed.delivery_id == min(
        row.id
        for row in before["deliveries"]
        if row.endpoint == "plain"  # type: ignore[attr-defined]
    )


async def test_a_target_with_rows_is_refused(tmp_path: Path, postgres_url: str) -> None:
    async with opened(SqliteStore(tmp_path / "state.db")) as source:
        await populate(source)
        async with opened(PostgresStore(postgres_url)) as target:
            await target.ingest("other", [], Checkpoint("other", {"replay_id": 1}))
            with pytest.raises(TargetNotEmptyError, match="already holds 1 rows"):
                await copy(source, target)
            assert [c.trigger for c in await target.checkpoints()] == ["other"]


def target_store(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    if engine == "sqlite":
        return SqliteStore(tmp_path / "target.db")
    if engine == "memory":
        return MemoryStore()
    return PostgresStore(request.getfixturevalue("postgres_url"))


@pytest.mark.parametrize("engine", ["sqlite", "memory", "postgresql"])
async def test_a_target_a_replica_leads_on_is_refused_and_its_fences_end(
    tmp_path: Path, request: pytest.FixtureRequest, engine: str
) -> None:
    """A replica leading a trigger on the target, rows or none, would write its own later
    position over the imported one: the move is refused while a lease runs, whatever the
    engine. A replica stopped on the empty target leaves its (released) lease and its
    replica row: the move goes ahead, and that lease no longer fences anything after it."""
    async with opened(SqliteStore(tmp_path / "state.db")) as source:
        await populate(source)
        async with opened(target_store(engine, tmp_path, request)) as target:
            await target.heartbeat("r1", timedelta(minutes=5))
            lease = await target.acquire_lease("accounts", "r1", timedelta(minutes=5))
            assert lease is not None
            with pytest.raises(StoreError, match=r"replicas are running on it \(1 triggers led\)"):
                await copy(source, target)
            assert await target.checkpoints() == []
            assert await target.release_lease("accounts", lease.fence)
            await copy(source, target)
            moved = {c.trigger: c.position for c in await target.checkpoints()}
            stale = Checkpoint("accounts", {"replay_id": 10**9})
            with pytest.raises(LeaseLostError):
                await target.ingest("accounts", [], stale, fence=lease.fence)
            assert {c.trigger: c.position for c in await target.checkpoints()} == moved
            # The next replica takes the trigger under a new epoch and writes.
            taken = await target.acquire_lease("accounts", "r2", timedelta(minutes=5))
            assert taken is not None and taken.epoch > lease.epoch + 1
            await target.ingest("accounts", [], stale, fence=taken.fence)


class Failing(Exception):
    """Raised by the source in the middle of a move."""


async def failing_after(
    dump: AsyncGenerator[DumpBatch, None], batches: int
) -> AsyncIterator[DumpBatch]:
    async for batch in dump:
        if batches == 0:
            raise Failing
        batches -= 1
        yield batch


@pytest.mark.parametrize("engine", ["sqlite", "postgresql", "memory"])
async def test_a_move_failing_part_way_leaves_the_target_empty(
    tmp_path: Path, request: pytest.FixtureRequest, engine: str
) -> None:
    def target_store() -> Store:
        if engine == "sqlite":
            return SqliteStore(tmp_path / "moved.db")
        if engine == "memory":
            return MemoryStore()
        return PostgresStore(request.getfixturevalue("postgres_url"))

    target = target_store()
    async with opened(SqliteStore(tmp_path / "state.db")) as source:
        populated = await populate(source)
        before = await everything(source, populated.in_flight)
        async with opened(target):
            dump = source.export_dump(batch_rows=4)
            with pytest.raises(Failing):
                await target.import_dump(failing_after(dump, batches=5))
            await dump.aclose()
            assert await target.list_deliveries() == [] and await target.checkpoints() == []
            assert await target.list_poison() == []
            await copy(source, target)  # the retry is not refused
            assert await everything(target, populated.in_flight) == before


async def test_the_cli_refuses_what_it_cannot_do(tmp_path: Path, postgres_url: str) -> None:
    db = tmp_path / "state.db"
    missing = tmp_path / "nothing.db"
    with pytest.raises(UsageError, match="the source must exist"):
        await migrate_store(f"sqlite:///{missing}", postgres_url, as_json=False)
    assert not missing.exists()
    async with opened(SqliteStore(db)):
        pass
    with pytest.raises(UsageError, match="the same store"):
        await migrate_store(
            f"sqlite:///{db}", f"sqlite:///{tmp_path}/../{tmp_path.name}/state.db", False
        )
    with pytest.raises(UsageError, match="the same store"):
        await migrate_store(postgres_url, postgres_url.replace("postgres@", "someone@"), False)
    with pytest.raises(UsageError, match="--to"):
        await migrate_store(f"sqlite:///{db}", "mysql://x/y", False)


async def test_a_locked_sqlite_source_is_reported(tmp_path: Path, postgres_url: str) -> None:
    """The export takes the file's write lock for its whole run: a writer holding it (a
    running daemon in a transaction) is named when it does not let go."""
    db = tmp_path / "state.db"
    async with opened(SqliteStore(db)) as source, opened(PostgresStore(postgres_url)) as target:
        await populate(source)
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreError, match="stop the daemon"):
                await copy(source, target)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert await target.list_deliveries() == []


async def test_a_daemon_cannot_write_to_the_source_during_the_export(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    async with opened(SqliteStore(db)) as source:
        await populate(source)
        dump = source.export_dump(batch_rows=2)
        await anext(dump)
        writer = sqlite3.connect(db, isolation_level=None, timeout=0)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                writer.execute("DELETE FROM poison")
        finally:
            writer.close()
            await dump.aclose()
        assert len(await source.list_poison()) == 2


async def test_replicas_cannot_write_to_a_postgresql_source_during_the_export(
    postgres_url: str,
) -> None:
    async with opened(PostgresStore(postgres_url)) as source:
        await populate(source)
        dump = source.export_dump(batch_rows=2)
        await anext(dump)
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as other:
            await other.execute("SET lock_timeout = '50ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                await other.execute("DELETE FROM poison")
            read = await other.execute("SELECT count(*) FROM poison")  # reads go on
            assert await read.fetchone() == (2,)
            await dump.aclose()
        assert len(await source.list_poison()) == 2


async def test_a_database_without_the_schema_gets_it_first(
    tmp_path: Path, empty_postgres_url: str
) -> None:
    db = tmp_path / "state.db"
    async with opened(SqliteStore(db)) as source:
        await populate(source)
    summary = json.loads(await migrate_store(f"sqlite:///{db}", empty_postgres_url, True))
    assert (summary["schema_version"], summary["events"]) == (len(migrations()), 13)
    async with opened(PostgresStore(empty_postgres_url), create=False) as target:
        assert len(await target.list_deliveries(limit=1000)) == 26


TRACED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def trace_contexts_claimed(store: Store) -> dict[str, str | None]:
    claims = await store.claim_due("hook", 100, timedelta(minutes=1))
    return {c.event_id: c.trace_context for c in claims}


async def test_trace_contexts_move_with_their_events(tmp_path: Path, postgres_url: str) -> None:
    """sqlite to postgresql to sqlite, and memory to sqlite to memory: every claim on each
    target carries the trace context its event was ingested with."""
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    traced = {"evt_1": TRACED, "evt_2": None, "evt_3": TRACED.replace("-01", "-00")}
    new = [
        NewEvent(event_id, None, at, b"{}", ("hook",), trace_context=context)
        for event_id, context in traced.items()
    ]
    async with opened(SqliteStore(tmp_path / "first.db")) as first:
        await first.ingest("t", new, Checkpoint("t", {"n": 1}))
        async with opened(PostgresStore(postgres_url)) as middle:
            await copy(first, middle, batch_rows=2)
            async with opened(SqliteStore(tmp_path / "last.db")) as last:
                await copy(middle, last)
                assert await trace_contexts_claimed(last) == traced
            assert await trace_contexts_claimed(middle) == traced
    async with opened(MemoryStore()) as source:
        await source.ingest("t", new, Checkpoint("t", {"n": 1}))
        async with opened(SqliteStore(tmp_path / "between.db")) as between:
            await copy(source, between)
            async with opened(MemoryStore()) as target:
                await copy(between, target, batch_rows=1)
                assert await trace_contexts_claimed(target) == traced
            assert await trace_contexts_claimed(between) == traced
