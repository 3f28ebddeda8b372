"""Moving a whole store to another engine (`sftriggerd migrate-store`): the rows as every
engine exports and imports them, engine-neutral, and what a move counts.

An export is an async iterator of batches (`DumpBatch`), in the order an import needs them:
every checkpoint, then the events by seq, then the deliveries by id (each with its attempt
history), then the poison events, oldest first. Ids (event seqs, delivery ids) are kept, so a
delivery keeps its number and a record's deliveries keep their order. An import writes them
all in one transaction of the target, which must hold no rows: a crash part-way leaves it as
empty as it was, and the next run does not refuse it as "not empty".
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import StoreError
from .records import AttemptRow, Checkpoint, DeliveryStatus, PoisonEvent

# Rows read and written per step: memory stays flat however large the store.
BATCH_ROWS = 1000


class TargetNotEmptyError(StoreError):
    """The import's target already holds rows: a move never merges two stores."""

    exit_code = 2


@dataclass(frozen=True)
class EventDump:
    seq: int
    trigger: str
    event_id: str
    record_id: str | None
    change: str
    occurred_at: datetime
    body: bytes
    created_at: datetime
    trace_context: str | None = None


@dataclass(frozen=True)
class DeliveryDump:
    """A delivery as moved. One in flight at the source moves as pending, due at once, its
    lease dropped (`was_in_flight` says so): the process that held the lease is gone."""

    id: int
    event_seq: int
    endpoint: str
    order_key: str | None
    status: DeliveryStatus
    attempts: int
    # Pending: when it comes due; None for an open delivery means "due at once", by the
    # importing store's clock. Finished: None.
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    created_at: datetime
    retry_since: datetime
    finished_at: datetime | None
    history: tuple[AttemptRow, ...] = ()
    was_in_flight: bool = False


def open_delivery(
    status: DeliveryStatus, next_attempt_at: datetime | None
) -> tuple[DeliveryStatus, datetime | None, bool]:
    """(status, due, was in flight) as a delivery moves: in flight becomes pending, due at
    once (its `next_attempt_at` was the lease's end, not a retry time)."""
    if status == "in_flight":
        return "pending", None, True
    return status, next_attempt_at, False


DumpRecord = Checkpoint | EventDump | DeliveryDump | PoisonEvent
DumpBatch = Sequence[DumpRecord]


@dataclass
class TransferCounts:
    """What a move carried, per table; deliveries per status as they arrive."""

    checkpoints: int = 0
    events: int = 0
    pending: int = 0
    in_flight_made_pending: int = 0
    delivered: int = 0
    dead: int = 0
    attempts: int = 0
    poison: int = 0

    @property
    def deliveries(self) -> int:
        return self.pending + self.delivered + self.dead

    def add(self, record: DumpRecord) -> None:
        if isinstance(record, Checkpoint):
            self.checkpoints += 1
        elif isinstance(record, EventDump):
            self.events += 1
        elif isinstance(record, DeliveryDump):
            self.attempts += len(record.history)
            self.in_flight_made_pending += record.was_in_flight
            if record.status == "delivered":
                self.delivered += 1
            elif record.status == "dead":
                self.dead += 1
            else:
                self.pending += 1
        else:
            self.poison += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "checkpoints": self.checkpoints,
            "events": self.events,
            "deliveries": {
                "total": self.deliveries,
                "pending": self.pending,
                "in_flight_made_pending": self.in_flight_made_pending,
                "delivered": self.delivered,
                "dead": self.dead,
            },
            "attempts": self.attempts,
            "poison": self.poison,
        }


async def counted(
    dump: AsyncIterable[DumpBatch], counts: TransferCounts
) -> AsyncGenerator[DumpBatch, None]:
    """`dump` passed through, each record counted on its way."""
    async for batch in dump:
        for record in batch:
            counts.add(record)
        yield batch


@dataclass
class Sorted:
    """One batch's records by kind, in the order an import writes them."""

    checkpoints: list[Checkpoint]
    events: list[EventDump]
    deliveries: list[DeliveryDump]
    poison: list[PoisonEvent]


def sort_batch(batch: DumpBatch) -> Sorted:
    found = Sorted([], [], [], [])
    for record in batch:
        if isinstance(record, Checkpoint):
            found.checkpoints.append(record)
        elif isinstance(record, EventDump):
            found.events.append(record)
        elif isinstance(record, DeliveryDump):
            found.deliveries.append(record)
        else:
            found.poison.append(record)
    return found


def not_empty(where: str, rows: int) -> TargetNotEmptyError:
    return TargetNotEmptyError(
        f"{where} already holds {rows} rows (events, deliveries, checkpoints, attempts or"
        " poison); migrate-store moves into an empty store only. A run that failed part-way"
        " leaves nothing behind, so this store was written by something else"
    )


def led_by_replicas(where: str, led: int) -> StoreError:
    """The rule every engine applies inside its import's transaction, after `not_empty`: no
    live trigger lease on the target. A replica leading a trigger there would write its own
    later position over the one imported, and everything between them would never be read.
    Lease and replica rows are not counted by `not_empty`: a daemon stopped on an empty
    target leaves them (its leases released or run out), and the move goes ahead; each
    engine then bumps every lease's epoch, so a fence left from before the move writes
    nothing after it."""
    return StoreError(
        f"{where}: replicas are running on it ({led} triggers led);"
        " stop every replica before moving a store into it"
    )


Page = Callable[[int, int], Awaitable[tuple[Sequence[DumpRecord], int]]]


async def paged(
    checkpoints: Callable[[], Awaitable[Sequence[Checkpoint]]],
    pages: Sequence[Page],
    batch_rows: int,
) -> AsyncGenerator[DumpBatch, None]:
    """An export from an engine's readers: the checkpoints (a few, one per trigger), then
    each page reader in turn, called with (the last key it returned, `batch_rows`) until it
    returns fewer rows than asked for."""
    found = await checkpoints()
    for start in range(0, len(found), batch_rows):
        yield found[start : start + batch_rows]
    for page in pages:
        after = 0
        while True:
            rows, after = await page(after, batch_rows)
            if rows:
                yield rows
            if len(rows) < batch_rows:
                break
