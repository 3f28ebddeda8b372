"""The embedded engine: one SQLite file in WAL mode, its connection on a thread of its own.

Durability. `journal_mode=WAL` with `synchronous=FULL` makes SQLite fsync the write-ahead log
at every commit, so when `ingest` or `record_outcome` returns, the transaction is on stable
storage: a process crash (SIGKILL) or a power loss afterwards cannot lose it, and one that
happens before the commit rolls the whole transaction back (events, deliveries and checkpoint
together), after which the source re-reads from the previous checkpoint. `NORMAL` would be
enough to lose nothing the source cannot re-read, but it could forget a recorded outcome or a
redrive after a power loss; FULL costs one fsync per commit, which group commit amortises.
Claims and releases only move leases, and skip their own fsync (`leases`): losing one
to a power loss sends a delivery again, never loses one.

Never blocking the loop. Every statement runs on the store's own single thread (sqlite3
objects must stay on the thread that made them, and one writer is what SQLite serialises to
anyway); the event loop only awaits futures. Outcomes arriving while a commit is on the
thread wait and go together in the next transaction (group commit), so one fsync covers many
deliveries under load.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TypeVar

from ...errors import StoreError
from ..activity import RecentActivity
from ..base import Store
from ..clock import Clock, wall_clock
from ..leadership import Fence, LeaseLostError, Replica, TriggerLease
from ..records import (
    Checkpoint,
    Claim,
    DeliveryDetail,
    DeliveryRow,
    DeliveryStatus,
    IngestResult,
    NewEvent,
    OutboxCounts,
    Outcome,
    PoisonEvent,
    RecordState,
)
from ..replay import Requeued, Selection
from ..transfer import BATCH_ROWS, DumpBatch, DumpRecord, Page, paged, sort_batch
from . import activity, attempts, expiry, leadership, leases, ops, replay, transfer
from . import prune as pruning

T = TypeVar("T")

# How long a statement waits for another process's write lock before it fails.
BUSY_TIMEOUT_MS = 5000


def _enter_wal(db: sqlite3.Connection) -> None:
    """Switches a file to WAL. On a new file that needs the file to itself, and SQLite answers
    SQLITE_BUSY at once, without waiting, while another process opens it too: two services
    started together would see one fail. So wait here, as long as the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            (mode,) = db.execute("PRAGMA journal_mode=WAL").fetchone()
        except sqlite3.OperationalError as exc:
            busy = (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
            continue
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"the file stays in journal mode {mode}, not WAL")
        return


class SqliteStore(Store):
    def __init__(self, path: str | Path, clock: Clock = wall_clock) -> None:
        """`clock` gives every time the store stamps or compares (see `base`)."""
        self.path = str(path)
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._db: sqlite3.Connection | None = None
        self._pending_outcomes: list[
            tuple[Sequence[tuple[Claim, Outcome]], asyncio.Future[list[bool]]]
        ] = []
        self._flusher: asyncio.Task[None] | None = None

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def on_thread() -> T:
            if self._db is None:
                raise StoreError("the store is not open")
            return work(self._db)

        if self._db is None:
            raise StoreError(f"sqlite store {self.path} is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, on_thread)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {self.path}: {exc}") from exc
        except LeaseLostError:
            raise  # typed: the source stops, it does not retry
        except StoreError as exc:
            # Raised on the thread by the engine's own checks (a schema too new): name the file.
            raise StoreError(f"sqlite store {self.path}: {exc}") from exc

    async def open(self, create: bool = True, migrate: bool = True) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, partial(self._connect, create and migrate))
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open sqlite store {self.path}: {exc}") from exc
        try:
            if migrate:
                await self._run(partial(ops.migrate, create=create))
            else:
                await self._run(ops.check_schema)
        except StoreError:
            await self.close()
            raise

    def _connect(self, create: bool) -> None:
        if self.path == ":memory:" or create:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        else:
            # mode=rw: SQLite itself refuses to make the file, so a mistyped path is an error.
            if not Path(self.path).is_file():
                raise StoreError(
                    f"no sqlite store at {self.path} (check store.url; `sftriggerd migrate`"
                    " or `run` creates it)"
                )
            uri = Path(self.path).resolve().as_uri() + "?mode=rw"
            db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if self.path != ":memory:":
            _enter_wal(db)
        db.execute(f"PRAGMA synchronous={ops.DURABLE_SYNCHRONOUS}")
        db.execute("PRAGMA foreign_keys=ON")
        self._db = db

    async def close(self) -> None:
        if self._db is None:
            return
        if self._flusher is not None:
            await asyncio.shield(self._flusher)

        def disconnect() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._executor, disconnect)

    async def schema_version(self) -> int:
        return await self._run(ops.schema_version)

    def supported_schema_version(self) -> int:
        return ops.supported_version()

    async def ping(self) -> bool:
        try:
            await self._run(lambda db: db.execute("SELECT 1").fetchone())
        except StoreError:
            return False
        return True

    async def ingest(
        self,
        trigger: str,
        events: Sequence[NewEvent],
        checkpoint: Checkpoint | None,
        poison: Sequence[PoisonEvent] = (),
        fence: Fence | None = None,
    ) -> IngestResult:
        now = self._clock()
        check = leadership.fence_check(trigger, fence, now)
        return await self._run(
            lambda db: ops.ingest(
                db, trigger, events, checkpoint, now, poison=poison, fence_check=check
            )
        )

    async def list_poison(self, trigger: str | None = None, limit: int = 100) -> list[PoisonEvent]:
        return await self._run(lambda db: ops.list_poison(db, trigger, limit))

    async def checkpoint(self, trigger: str) -> Checkpoint | None:
        found = await self._run(lambda db: ops.checkpoints(db, trigger))
        return found[0] if found else None

    async def checkpoints(self) -> list[Checkpoint]:
        return await self._run(ops.checkpoints)

    async def last_changes(self, trigger: str, record_ids: Sequence[str]) -> dict[str, RecordState]:
        return await self._run(lambda db: ops.last_changes(db, trigger, record_ids))

    async def claim_due(self, endpoint: str, limit: int, lease: timedelta) -> list[Claim]:
        now = self._clock()
        return await self._run(lambda db: leases.claim_due(db, endpoint, limit, lease, now))

    async def record_outcomes(self, outcomes: Sequence[tuple[Claim, Outcome]]) -> list[bool]:
        if not outcomes:
            return []
        future: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
        self._pending_outcomes.append((outcomes, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_outcomes())
        # Shielded: a caller cancelled at shutdown must not leave the outcome half-known.
        return await asyncio.shield(future)

    async def _flush_outcomes(self) -> None:
        while self._pending_outcomes:
            batch, self._pending_outcomes = self._pending_outcomes, []
            items = [item for outcomes, _ in batch for item in outcomes]
            try:
                results = await self._run(
                    partial(ops.record_outcomes, items=items, now=self._clock())
                )
            except StoreError as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for outcomes, future in batch:
                if not future.done():
                    future.set_result(results[start : start + len(outcomes)])
                start += len(outcomes)

    async def release(self, claims: Sequence[Claim]) -> None:
        if claims:
            now = self._clock()
            await self._run(lambda db: leases.release(db, claims, now))

    async def expire_overdue(
        self, endpoint: str, max_age: timedelta, error: str, limit: int
    ) -> int:
        now = self._clock()
        return await self._run(
            lambda db: expiry.expire_overdue(db, endpoint, now - max_age, error, now, limit)
        )

    async def next_due_in(self, endpoint: str) -> timedelta | None:
        due = await self._run(lambda db: ops.next_due_at(db, endpoint))
        return None if due is None else due - self._clock()

    async def recent_activity(self, within: timedelta, latest: int) -> RecentActivity:
        now = self._clock()
        return await self._run(lambda db: activity.recent_activity(db, now, now - within, latest))

    async def list_deliveries(
        self,
        status: DeliveryStatus | None = None,
        endpoint: str | None = None,
        limit: int = 100,
    ) -> list[DeliveryRow]:
        return await self._run(lambda db: ops.list_deliveries(db, status, endpoint, limit))

    async def get_delivery(self, delivery_id: int) -> DeliveryRow | None:
        return await self._run(lambda db: ops.get_delivery(db, delivery_id))

    async def get_delivery_detail(self, delivery_id: int) -> DeliveryDetail | None:
        def read(db: sqlite3.Connection) -> DeliveryDetail | None:
            row = ops.get_delivery(db, delivery_id)
            return None if row is None else attempts.delivery_detail(db, row)

        return await self._run(read)

    async def redrive(self, delivery_id: int) -> bool:
        now = self._clock()
        return await self._run(lambda db: ops.redrive(db, delivery_id, now))

    async def redrive_endpoint(self, endpoint: str) -> int:
        now = self._clock()
        return await self._run(lambda db: ops.redrive_endpoint(db, endpoint, now))

    async def requeue(self, selection: Selection) -> Requeued:
        now = self._clock()
        planned = await self._run(lambda db: replay.plan_requeue(db, selection))
        requeued, endpoints = 0, set[str]()
        for chunk in replay.chunks(planned):
            count, touched = await self._run(
                partial(replay.requeue_chunk, chunk=chunk, statuses=planned.statuses, now=now)
            )
            requeued += count
            endpoints |= touched
        return Requeued(requeued, planned.already_pending, frozenset(endpoints))

    async def rewind(
        self, trigger: str, checkpoint: Checkpoint, fence: Fence | None = None
    ) -> None:
        now = self._clock()
        check = leadership.fence_check(trigger, fence, now)
        await self._run(lambda db: replay.rewind(db, trigger, checkpoint, now, check))

    async def heartbeat(self, replica: str, forget_after: timedelta) -> None:
        now = self._clock()
        await self._run(lambda db: leadership.heartbeat(db, replica, forget_after, now))

    async def retire_replica(self, replica: str) -> None:
        await self._run(lambda db: leadership.retire(db, replica))

    async def replicas(self, seen_within: timedelta | None = None) -> list[Replica]:
        now = self._clock()
        return await self._run(lambda db: leadership.replicas(db, seen_within, now))

    async def acquire_lease(
        self, trigger: str, replica: str, lasting: timedelta
    ) -> TriggerLease | None:
        now = self._clock()
        return await self._run(lambda db: leadership.acquire(db, trigger, replica, lasting, now))

    async def renew_leases(
        self, replica: str, epochs: Mapping[str, int], lasting: timedelta
    ) -> list[TriggerLease]:
        now = self._clock()
        return await self._run(lambda db: leadership.renew(db, replica, epochs, lasting, now))

    async def release_lease(self, trigger: str, fence: Fence) -> bool:
        now = self._clock()
        return await self._run(lambda db: leadership.release(db, trigger, fence, now))

    async def leases(self) -> list[TriggerLease]:
        now = self._clock()
        return await self._run(lambda db: leadership.leases(db, now))

    async def outbox_counts(self) -> dict[str, OutboxCounts]:
        return await self._run(ops.outbox_counts)

    async def prune(self, older_than: timedelta) -> int:
        delivered_before = self._clock() - older_than
        # Bounded steps, each its own transaction: other work runs between them.
        removed = 0
        while True:
            step = await self._run(
                partial(
                    pruning.prune_delivered,
                    delivered_before=delivered_before,
                    limit=pruning.BATCH_ROWS,
                )
            )
            removed += step
            if step < pruning.BATCH_ROWS:
                break
        after_seq: int | None = 0
        while after_seq is not None:
            after_seq = await self._run(
                partial(
                    pruning.prune_undelivered_events,
                    delivered_before=delivered_before,
                    after_seq=after_seq,
                    window=pruning.BATCH_ROWS,
                )
            )
        return removed

    async def export_dump(self, batch_rows: int = BATCH_ROWS) -> AsyncGenerator[DumpBatch, None]:
        """Under the write lock throughout (`transfer`): a daemon left running on the file
        cannot write meanwhile (its writes wait, then fail)."""
        await self._run(partial(transfer.begin, path=self.path))
        try:
            pages = (transfer.events_after, transfer.deliveries_after, transfer.poison_after)
            readers: list[Page] = [partial(self._page, page) for page in pages]
            async for batch in paged(
                partial(self._run, transfer.read_checkpoints), readers, batch_rows
            ):
                yield batch
        finally:
            await self._run(partial(transfer.end, commit=False))

    async def _page(
        self,
        page: Callable[[sqlite3.Connection, int, int], tuple[Sequence[DumpRecord], int]],
        after: int,
        limit: int,
    ) -> tuple[Sequence[DumpRecord], int]:
        return await self._run(lambda db: page(db, after, limit))

    async def import_dump(self, dump: AsyncIterable[DumpBatch]) -> None:
        await self._run(partial(transfer.begin_import, path=self.path, now=self._clock()))
        committed = False
        try:
            async for batch in dump:
                now = self._clock()
                await self._run(partial(transfer.write, batch=sort_batch(batch), now=now))
            await self._run(partial(transfer.end, commit=True))
            committed = True
        finally:
            if not committed:
                await self._run(partial(transfer.end, commit=False))
