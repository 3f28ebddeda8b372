"""The in-process engine: the store's contract in plain Python, for tests and benchmarks.

Every row lives in dicts of this object and nothing is written anywhere: a restart loses
everything, so the daemon never runs on it. Each operation runs under one asyncio lock and
awaits nothing while it holds it, which makes it as atomic as a transaction: it checks all it
needs before it changes anything, so a refused ingest changes nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from ...errors import StoreError
from ..activity import RecentActivity
from ..base import Store
from ..clock import Clock, wall_clock
from ..leadership import Fence
from ..records import (
    AttemptRow,
    Checkpoint,
    Claim,
    Dead,
    Delivered,
    DeliveryDetail,
    DeliveryRow,
    DeliveryStatus,
    IngestResult,
    NewEvent,
    OutboxCounts,
    Outcome,
    PoisonEvent,
    RecordState,
    Retry,
    body_record,
    storable_trace_context,
)
from ..transfer import BATCH_ROWS, DumpBatch, led_by_replicas, not_empty
from . import transfer
from .leadership import LeadershipMethods, LeaseTables
from .replay import ReplayMethods
from .tables import (
    OPEN,
    DeliveryRecord,
    EventRow,
    check_event,
    claimable,
    recent_activity,
)

# The schema this engine stands for: it has none to migrate, but answers like one that is
# current.
SCHEMA_VERSION = 1


class MemoryStore(ReplayMethods, LeadershipMethods, Store):
    def __init__(self, clock: Clock = wall_clock) -> None:
        """`clock` gives every time the store stamps or compares (see `base`)."""
        self._clock = clock
        self._lock = asyncio.Lock()
        self._made = False
        self._open = False
        self._seqs = itertools.count(1)
        self._ids = itertools.count(1)
        self._events: dict[tuple[str, str], EventRow] = {}
        self._deliveries: dict[int, DeliveryRecord] = {}
        self._checkpoints: dict[str, Checkpoint] = {}
        self._poison: list[PoisonEvent] = []
        self._leadership = LeaseTables()

    def _check_open(self) -> None:
        if not self._open:
            raise StoreError("the memory store is not open")

    async def open(self, create: bool = True, migrate: bool = True) -> None:
        # Nothing to migrate; without migrating, a store not made yet is not made either.
        if not self._made and not (create and migrate):
            raise StoreError("no memory store was made in this process")
        self._made = self._open = True

    async def close(self) -> None:
        self._open = False

    async def schema_version(self) -> int:
        self._check_open()
        return SCHEMA_VERSION

    def supported_schema_version(self) -> int:
        return SCHEMA_VERSION

    async def ping(self) -> bool:
        return self._open

    async def ingest(
        self,
        trigger: str,
        events: Sequence[NewEvent],
        checkpoint: Checkpoint | None,
        poison: Sequence[PoisonEvent] = (),
        fence: Fence | None = None,
    ) -> IngestResult:
        async with self._lock:
            self._check_open()
            for event in events:
                check_event(event)
            now = self._clock()
            if fence is not None:
                self._leadership.check_fence(trigger, fence, now)
            self._poison += [replace(item, received_at=item.received_at or now) for item in poison]
            new = duplicates = deliveries = 0
            for event in events:
                if (trigger, event.event_id) in self._events:
                    duplicates += 1
                    continue
                new += 1
                deliveries += self._store_event(trigger, event, now)
            if checkpoint is not None:
                saved = self._checkpoints.get(checkpoint.trigger)
                kept_time = saved.event_time if saved is not None else None
                self._checkpoints[checkpoint.trigger] = replace(
                    checkpoint, event_time=checkpoint.event_time or kept_time, updated_at=now
                )
        return IngestResult(new_events=new, duplicate_events=duplicates, deliveries=deliveries)

    def _store_event(self, trigger: str, event: NewEvent, now: datetime) -> int:
        row = EventRow(
            seq=next(self._seqs),
            trigger=trigger,
            event_id=event.event_id,
            record_id=event.record_id,
            change=event.change,
            occurred_at=event.occurred_at,
            body=bytes(event.body),
            created_at=now,
            trace_context=storable_trace_context(event.trace_context),
        )
        self._events[(trigger, event.event_id)] = row
        for endpoint in event.endpoints:
            delivery_id = next(self._ids)
            self._deliveries[delivery_id] = DeliveryRecord(
                id=delivery_id,
                event=row,
                endpoint=endpoint,
                order_key=event.order_key if endpoint in event.ordered_endpoints else None,
                status="pending",
                next_attempt_at=now,
                created_at=now,
                retry_since=now,
            )
        return len(event.endpoints)

    async def list_poison(self, trigger: str | None = None, limit: int = 100) -> list[PoisonEvent]:
        self._check_open()
        found = [p for p in reversed(self._poison) if trigger is None or p.trigger == trigger]
        return found[:limit]

    async def checkpoint(self, trigger: str) -> Checkpoint | None:
        self._check_open()
        return self._checkpoints.get(trigger)

    async def checkpoints(self) -> list[Checkpoint]:
        self._check_open()
        return list(self._checkpoints.values())

    async def last_changes(self, trigger: str, record_ids: Sequence[str]) -> dict[str, RecordState]:
        self._check_open()
        newest: dict[str, EventRow] = {}
        wanted = set(record_ids)
        for row in self._events.values():
            if row.trigger == trigger and row.record_id in wanted:
                assert row.record_id is not None
                if row.record_id not in newest or newest[row.record_id].seq < row.seq:
                    newest[row.record_id] = row
        return {
            record_id: RecordState(row.change, row.occurred_at, body_record(row.body))
            for record_id, row in newest.items()
        }

    async def claim_due(self, endpoint: str, limit: int, lease: timedelta) -> list[Claim]:
        async with self._lock:
            self._check_open()
            now = self._clock()
            token, lease_until = uuid.uuid4().hex, now + lease
            mine = [d for d in self._deliveries.values() if d.endpoint == endpoint]
            claims: list[Claim] = []
            for delivery_id in claimable(mine, now, limit):
                d = self._deliveries[delivery_id]
                d.status, d.next_attempt_at, d.lease_token = "in_flight", lease_until, token
                claims.append(
                    Claim(
                        delivery_id=d.id,
                        endpoint=d.endpoint,
                        trigger=d.event.trigger,
                        event_id=d.event.event_id,
                        body=d.event.body,
                        attempts=d.attempts,
                        retry_since=d.retry_since,
                        occurred_at=d.event.occurred_at,
                        lease_token=token,
                        lease_until=lease_until,
                        trace_context=d.event.trace_context,
                    )
                )
        return claims

    async def record_outcomes(self, outcomes: Sequence[tuple[Claim, Outcome]]) -> list[bool]:
        async with self._lock:
            self._check_open()
            now = self._clock()
            return [self._record(claim, outcome, now) for claim, outcome in outcomes]

    def _record(self, claim: Claim, outcome: Outcome, now: datetime) -> bool:
        d = self._deliveries.get(claim.delivery_id)
        if d is None or d.status != "in_flight" or d.lease_token != claim.lease_token:
            return False
        d.attempts += 1
        d.lease_token = None
        d.last_status = outcome.status
        if isinstance(outcome, Retry):
            d.status, d.next_attempt_at, d.finished_at = "pending", now + outcome.delay, None
            d.last_error = outcome.error
        else:
            assert isinstance(outcome, Delivered | Dead)
            d.status = "delivered" if isinstance(outcome, Delivered) else "dead"
            d.next_attempt_at, d.finished_at = None, now
            d.last_error = outcome.error if isinstance(outcome, Dead) else None
        trace = outcome.trace
        d.history.append(
            AttemptRow(
                at=trace.started_at if trace else now,
                duration_ms=trace.duration_ms if trace else None,
                status=outcome.status,
                error=d.last_error,
                answer=trace.answer if trace else None,
                next_attempt_at=d.next_attempt_at if isinstance(outcome, Retry) else None,
            )
        )
        return True

    async def release(self, claims: Sequence[Claim]) -> None:
        async with self._lock:
            self._check_open()
            now = self._clock()
            for claim in claims:
                d = self._deliveries.get(claim.delivery_id)
                if d is not None and d.status == "in_flight" and d.lease_token == claim.lease_token:
                    d.status, d.next_attempt_at, d.lease_token = "pending", now, None

    async def expire_overdue(
        self, endpoint: str, max_age: timedelta, error: str, limit: int
    ) -> int:
        async with self._lock:
            self._check_open()
            now = self._clock()
            cutoff = now - max_age
            overdue = [
                d
                # The longest overdue first, as the other engines take them.
                for d in sorted(self._deliveries.values(), key=lambda d: (d.retry_since, d.id))
                if d.endpoint == endpoint
                and d.status in OPEN
                and d.retry_since <= cutoff
                and (d.status == "pending" or (d.next_attempt_at or now) <= now)
            ][:limit]
            for d in overdue:
                d.status, d.finished_at, d.next_attempt_at = "dead", now, None
                d.lease_token, d.last_error = None, error
        return len(overdue)

    async def next_due_in(self, endpoint: str) -> timedelta | None:
        self._check_open()
        due = [
            d.next_attempt_at
            for d in self._deliveries.values()
            if d.endpoint == endpoint and d.status in OPEN and d.next_attempt_at is not None
        ]
        return min(due) - self._clock() if due else None

    async def recent_activity(self, within: timedelta, latest: int) -> RecentActivity:
        self._check_open()
        return recent_activity(self._deliveries.values(), self._clock(), within, latest)

    async def list_deliveries(
        self,
        status: DeliveryStatus | None = None,
        endpoint: str | None = None,
        limit: int = 100,
    ) -> list[DeliveryRow]:
        self._check_open()
        found = [
            d.row()
            for d in sorted(self._deliveries.values(), key=lambda d: -d.id)
            if (status is None or d.status == status)
            and (endpoint is None or d.endpoint == endpoint)
        ]
        return found[:limit]

    async def get_delivery(self, delivery_id: int) -> DeliveryRow | None:
        self._check_open()
        d = self._deliveries.get(delivery_id)
        return None if d is None else d.row()

    async def get_delivery_detail(self, delivery_id: int) -> DeliveryDetail | None:
        self._check_open()
        d = self._deliveries.get(delivery_id)
        if d is None:
            return None
        return DeliveryDetail(delivery=d.row(), body=d.event.body, attempts=tuple(d.history))

    async def redrive(self, delivery_id: int) -> bool:
        async with self._lock:
            self._check_open()
            d = self._deliveries.get(delivery_id)
            if d is None or d.status != "dead":
                return False
            d.requeue(self._clock())
        return True

    async def redrive_endpoint(self, endpoint: str) -> int:
        async with self._lock:
            self._check_open()
            now = self._clock()
            dead = [
                d
                for d in self._deliveries.values()
                if d.endpoint == endpoint and d.status == "dead"
            ]
            for d in dead:
                d.requeue(now)
        return len(dead)

    async def outbox_counts(self) -> dict[str, OutboxCounts]:
        self._check_open()
        pending: dict[str, int] = {}
        dead: dict[str, int] = {}
        for d in self._deliveries.values():
            if d.status in OPEN:
                pending[d.endpoint] = pending.get(d.endpoint, 0) + 1
            elif d.status == "dead":
                dead[d.endpoint] = dead.get(d.endpoint, 0) + 1
        return {
            endpoint: OutboxCounts(pending=pending.get(endpoint, 0), dead=dead.get(endpoint, 0))
            for endpoint in pending.keys() | dead.keys()
        }

    async def prune(self, older_than: timedelta) -> int:
        async with self._lock:
            self._check_open()
            cutoff = self._clock() - older_than
            gone = [
                d.id
                for d in self._deliveries.values()
                if d.status == "delivered" and d.finished_at is not None and d.finished_at < cutoff
            ]
            touched = {self._deliveries[i].event.seq for i in gone}
            for delivery_id in gone:
                del self._deliveries[delivery_id]
            kept = {d.event.seq for d in self._deliveries.values()}
            for key, row in list(self._events.items()):
                if row.seq not in kept and (row.seq in touched or row.created_at < cutoff):
                    del self._events[key]
        return len(gone)

    async def export_dump(self, batch_rows: int = BATCH_ROWS) -> AsyncGenerator[DumpBatch, None]:
        """Under the store's lock throughout: nothing changes it meanwhile."""
        async with self._lock:
            self._check_open()
            tables = (self._checkpoints, self._events, self._deliveries, self._poison)
            for batch in transfer.dump(*tables, batch_rows):
                yield batch

    async def import_dump(self, dump: AsyncIterable[DumpBatch]) -> None:
        async with self._lock:
            self._check_open()
            held = len(self._checkpoints) + len(self._events) + len(self._poison)
            if held or self._deliveries:
                raise not_empty("the memory store", held + len(self._deliveries))
            led = self._leadership.live(self._clock())
            if led:
                raise led_by_replicas("the memory store", led)
            staged = await transfer.stage(dump, self._clock)
            self._leadership.end_fences()
            self._checkpoints, self._events = staged.checkpoints, staged.events
            self._deliveries, self._poison = staged.deliveries, staged.poison
            self._seqs = itertools.count(staged.last_seq + 1)
            self._ids = itertools.count(staged.last_id + 1)
