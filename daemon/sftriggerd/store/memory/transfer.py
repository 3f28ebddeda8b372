"""The in-memory engine's side of a move (`store.transfer`): its rows as an export, and an
export staged into new tables that the engine takes over only once all of it is read, so a
failure part-way leaves the store as empty as it was."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from ...errors import StoreError
from ..clock import Clock
from ..records import Checkpoint, PoisonEvent, storable_trace_context
from ..transfer import DeliveryDump, DumpBatch, EventDump, open_delivery, sort_batch
from .tables import DeliveryRecord, EventRow


def dump(
    checkpoints: Mapping[str, Checkpoint],
    events: Mapping[tuple[str, str], EventRow],
    deliveries: Mapping[int, DeliveryRecord],
    poison: Sequence[PoisonEvent],
    batch_rows: int,
) -> Iterator[DumpBatch]:
    """The rows in the order an import needs them, in batches of at most `batch_rows`."""
    saved = sorted(checkpoints.values(), key=lambda c: c.trigger)
    for start in range(0, len(saved), batch_rows):
        yield saved[start : start + batch_rows]
    ordered_events = sorted(events.values(), key=lambda e: e.seq)
    for start in range(0, len(ordered_events), batch_rows):
        yield [_event(e) for e in ordered_events[start : start + batch_rows]]
    ordered = sorted(deliveries.values(), key=lambda d: d.id)
    for start in range(0, len(ordered), batch_rows):
        yield [_delivery(d) for d in ordered[start : start + batch_rows]]
    for start in range(0, len(poison), batch_rows):
        yield poison[start : start + batch_rows]


def _event(row: EventRow) -> EventDump:
    return EventDump(
        row.seq,
        row.trigger,
        row.event_id,
        row.record_id,
        row.change,
        row.occurred_at,
        row.body,
        row.created_at,
        row.trace_context,
    )


def _delivery(d: DeliveryRecord) -> DeliveryDump:
    status, due, was_in_flight = open_delivery(d.status, d.next_attempt_at)
    return DeliveryDump(
        id=d.id,
        event_seq=d.event.seq,
        endpoint=d.endpoint,
        order_key=d.order_key,
        status=status,
        attempts=d.attempts,
        next_attempt_at=due,
        last_status=d.last_status,
        last_error=d.last_error,
        created_at=d.created_at,
        retry_since=d.retry_since,
        finished_at=d.finished_at,
        history=tuple(d.history),
        was_in_flight=was_in_flight,
    )


@dataclass
class Staged:
    """An import's tables, built aside."""

    checkpoints: dict[str, Checkpoint] = field(default_factory=dict)
    events: dict[tuple[str, str], EventRow] = field(default_factory=dict)
    deliveries: dict[int, DeliveryRecord] = field(default_factory=dict)
    poison: list[PoisonEvent] = field(default_factory=list)
    by_seq: dict[int, EventRow] = field(default_factory=dict)

    @property
    def last_seq(self) -> int:
        return max(self.by_seq, default=0)

    @property
    def last_id(self) -> int:
        return max(self.deliveries, default=0)


async def stage(source: AsyncIterable[DumpBatch], clock: Clock) -> Staged:
    staged = Staged()
    async for batch in source:
        now = clock()
        rows = sort_batch(batch)
        for c in rows.checkpoints:
            staged.checkpoints[c.trigger] = replace(c, updated_at=c.updated_at or now)
        for e in rows.events:
            row = EventRow(*_event_fields(e))
            staged.events[(e.trigger, e.event_id)] = staged.by_seq[e.seq] = row
        for d in rows.deliveries:
            staged.deliveries[d.id] = _record(d, staged.by_seq, now)
        staged.poison += [replace(p, received_at=p.received_at or now) for p in rows.poison]
    return staged


def _event_fields(
    e: EventDump,
) -> tuple[int, str, str, str | None, str, datetime, bytes, datetime, str | None]:
    return (
        e.seq,
        e.trigger,
        e.event_id,
        e.record_id,
        e.change,
        e.occurred_at,
        e.body,
        e.created_at,
        storable_trace_context(e.trace_context),
    )


def _record(d: DeliveryDump, by_seq: Mapping[int, EventRow], now: datetime) -> DeliveryRecord:
    event = by_seq.get(d.event_seq)
    if event is None:
        raise StoreError(f"delivery {d.id}: its event {d.event_seq} came in no earlier batch")
    opened = d.status in ("pending", "in_flight")
    return DeliveryRecord(
        id=d.id,
        event=event,
        endpoint=d.endpoint,
        order_key=d.order_key,
        status="pending" if opened else d.status,
        next_attempt_at=(d.next_attempt_at or now) if opened else None,
        created_at=d.created_at,
        retry_since=d.retry_since,
        attempts=d.attempts,
        last_status=d.last_status,
        last_error=d.last_error,
        finished_at=None if opened else (d.finished_at or now),
        history=list(d.history),
    )
