"""The values that cross the store's interface; plain, frozen, engine-neutral."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

DeliveryStatus = Literal["pending", "in_flight", "delivered", "dead"]


@dataclass(frozen=True)
class Checkpoint:
    """Where a trigger's source resumes: a replay id or a polling watermark.

    `position` is the source's own JSON-ready value; `event_time` is the newest committed
    change's time, for lag; both move only inside `Store.ingest`.
    """

    trigger: str
    position: dict[str, Any]
    event_time: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class NewEvent:
    """An event ready to store: its webhook body, and the endpoints it goes to."""

    event_id: str
    record_id: str | None
    occurred_at: datetime
    body: bytes
    endpoints: tuple[str, ...]
    # Endpoints whose deliveries for the same record must go out in order.
    ordered_endpoints: frozenset[str] = field(default_factory=frozenset)
    change: str = ""
    # What ties the deliveries of one record together for per-record order (built by
    # ingest, `routing.order_key`); carried by the deliveries to `ordered_endpoints` only.
    # None: this event's deliveries wait for nothing (no record id).
    order_key: str | None = None
    # The W3C `traceparent` of the trace begun when the event arrived, kept with the event
    # so an attempt made later (after a restart, or by another replica) continues it; stored
    # as `storable_trace_context` makes it.
    trace_context: str | None = None


# A traceparent is 55 characters; later versions of the format may append fields, so the
# store keeps up to this many rather than parsing it, and refuses only what cannot be one.
TRACE_CONTEXT_MAX_CHARS = 512


def storable_trace_context(value: object) -> str | None:
    """An event's trace context as the store keeps it: the value itself when it could be a
    traceparent (text of at most `TRACE_CONTEXT_MAX_CHARS` printable ASCII characters), else
    None. Never refused: an event is not lost for its trace context, which comes from
    outside and only ties later attempts to a trace."""
    if not isinstance(value, str) or not 0 < len(value) <= TRACE_CONTEXT_MAX_CHARS:
        return None
    if not all(" " <= char <= "~" for char in value):
        return None
    return value


@dataclass(frozen=True)
class IngestResult:
    new_events: int
    duplicate_events: int
    deliveries: int


@dataclass(frozen=True)
class Claim:
    """A delivery leased to this process until `lease_until` (the store's clock); the key to
    record its outcome."""

    delivery_id: int
    endpoint: str
    trigger: str
    event_id: str
    body: bytes
    attempts: int  # attempts made before this one (since the last redrive)
    retry_since: datetime  # when the max_age clock started: creation, or the last redrive
    occurred_at: datetime
    lease_token: str
    lease_until: datetime
    # The event's trace context as stored at ingest (None: none, or not plausible).
    trace_context: str | None = None


@dataclass(frozen=True)
class AttemptTrace:
    """How one attempt went, beyond its outcome: kept in the delivery's attempt history."""

    started_at: datetime
    duration_ms: int
    # The start of the answer's body as text, secrets and URL user-info removed; None when
    # no answer came (timeout, connection error).
    answer: str | None = None


@dataclass(frozen=True)
class Delivered:
    """A 2xx: finished, stamped with the store's clock when recorded."""

    status: int
    trace: AttemptTrace | None = None


@dataclass(frozen=True)
class Retry:
    """Try again `delay` after the store records this (the store's clock)."""

    delay: timedelta
    status: int | None
    error: str
    trace: AttemptTrace | None = None


@dataclass(frozen=True)
class Dead:
    """Given up: finished, stamped with the store's clock when recorded."""

    status: int | None
    error: str
    trace: AttemptTrace | None = None


Outcome = Delivered | Retry | Dead


@dataclass(frozen=True)
class DeliveryRow:
    """One delivery as the admin API and the CLI show it."""

    id: int
    event_id: str
    endpoint: str
    trigger: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    created_at: datetime


def delivery_row(values: Sequence[Any], to_time: Callable[[Any], datetime | None]) -> DeliveryRow:
    """A `DeliveryRow` from a row of id, event_id, endpoint, trigger, status, attempts,
    next_attempt_at, last_status, last_error, created_at (the engines' one column order);
    `to_time` reads the engine's stored times."""
    created_at = to_time(values[9])
    assert created_at is not None, "every delivery has a creation time"
    return DeliveryRow(
        id=values[0],
        event_id=values[1],
        endpoint=values[2],
        trigger=values[3],
        status=values[4],
        attempts=values[5],
        next_attempt_at=to_time(values[6]),
        last_status=values[7],
        last_error=values[8],
        created_at=created_at,
    )


def body_record(body: bytes | str | None) -> dict[str, Any] | None:
    """The `record` of a stored webhook body, or None when it cannot be read."""
    try:
        record = json.loads(body) if body is not None else None
    except ValueError:
        return None
    found = record.get("record") if isinstance(record, dict) else None
    return found if isinstance(found, dict) else None


@dataclass(frozen=True)
class AttemptRow:
    """One attempt of a delivery as kept: every attempt, across redrives, oldest first."""

    at: datetime
    duration_ms: int | None
    status: int | None
    error: str | None
    answer: str | None
    next_attempt_at: datetime | None


@dataclass(frozen=True)
class DeliveryDetail:
    """A delivery with what was sent (the stored webhook body) and every attempt."""

    delivery: DeliveryRow
    body: bytes
    attempts: tuple[AttemptRow, ...]


@dataclass(frozen=True)
class OutboxCounts:
    pending: int
    dead: int


@dataclass(frozen=True)
class PoisonEvent:
    """A message from outside that could not be turned into events: kept with its reason so
    an operator can see it, while the source moves past it (the checkpoint moves with it)."""

    trigger: str
    reason: str
    # The message as received, as text (JSON where it could be written as JSON), truncated.
    message: str
    received_at: datetime | None = None


@dataclass(frozen=True)
class RecordState:
    """The newest stored event of a record, for telling undeletes and skipping re-reads."""

    change: str
    occurred_at: datetime
    # The record as that event carried it (None when unknown): tells whether a re-read row
    # of the same second shows anything the event did not.
    record: Mapping[str, Any] | None = None
