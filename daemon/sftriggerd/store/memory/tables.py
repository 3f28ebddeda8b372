"""The in-memory engine's rows and what it reads from them: plain mutable records, kept in
dicts by the engine, and the rules that pick rows (due, held back, selected)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ...errors import StoreError
from ..activity import FinishedDelivery, RecentActivity, epoch_minute, newest, tally
from ..records import AttemptRow, DeliveryRow, DeliveryStatus, NewEvent
from ..replay import Selection

OPEN: frozenset[DeliveryStatus] = frozenset({"pending", "in_flight"})


@dataclass
class EventRow:
    seq: int
    trigger: str
    event_id: str
    record_id: str | None
    change: str
    occurred_at: datetime
    body: bytes
    created_at: datetime
    trace_context: str | None = None


@dataclass
class DeliveryRecord:
    id: int
    event: EventRow
    endpoint: str
    order_key: str | None
    status: DeliveryStatus
    # pending: when to try next; in flight: when the lease runs out; finished: None.
    next_attempt_at: datetime | None
    created_at: datetime
    retry_since: datetime
    attempts: int = 0
    lease_token: str | None = None
    last_status: int | None = None
    last_error: str | None = None
    finished_at: datetime | None = None
    history: list[AttemptRow] = field(default_factory=list)

    def row(self) -> DeliveryRow:
        return DeliveryRow(
            id=self.id,
            event_id=self.event.event_id,
            endpoint=self.endpoint,
            trigger=self.event.trigger,
            status=self.status,
            attempts=self.attempts,
            next_attempt_at=self.next_attempt_at,
            last_status=self.last_status,
            last_error=self.last_error,
            created_at=self.created_at,
        )

    def requeue(self, now: datetime) -> None:
        """Pending and due now, with a fresh retry clock (a redrive or a resend)."""
        self.status = "pending"
        self.next_attempt_at = now
        self.retry_since = now
        self.attempts = 0
        self.finished_at = None
        self.lease_token = None


def claimable(deliveries: Iterable[DeliveryRecord], now: datetime, limit: int) -> list[int]:
    """Of one endpoint's deliveries (in id order), up to `limit` due ones, oldest first, that
    no older open change of their record holds back, and whose record has no change in
    flight under a live lease: the same rule as the SQLite engine's claim."""
    ordered = sorted(deliveries, key=lambda d: d.id)
    oldest_open: dict[str, int] = {}
    live: set[str] = set()
    for d in ordered:
        if d.order_key is None or d.status not in OPEN:
            continue
        oldest_open.setdefault(d.order_key, d.id)
        if d.status == "in_flight" and d.next_attempt_at is not None and d.next_attempt_at > now:
            live.add(d.order_key)
    taken: list[int] = []
    for d in ordered:
        if len(taken) == limit:
            break
        if d.status not in OPEN or d.next_attempt_at is None or d.next_attempt_at > now:
            continue
        key = d.order_key
        if key is None or (key not in live and oldest_open[key] == d.id):
            taken.append(d.id)
    return taken


def selected(delivery: DeliveryRecord, selection: Selection, first_seq: int | None) -> bool:
    """Whether a resend's selection takes the delivery (its status aside); `first_seq` is the
    first event after the selection's replay id, when it names one."""
    event = delivery.event
    checks = (
        selection.delivery_id is None or delivery.id == selection.delivery_id,
        selection.endpoint is None or delivery.endpoint == selection.endpoint,
        selection.trigger is None or event.trigger == selection.trigger,
        selection.since is None or delivery.created_at >= selection.since,
        selection.until is None or delivery.created_at < selection.until,
        selection.occurred_since is None or event.occurred_at >= selection.occurred_since,
        not selection.by_replay or (first_seq is not None and event.seq >= first_seq),
    )
    return all(checks)


def replay_id_after(body: bytes, after: int) -> bool:
    """Whether a streamed body's `source.replay_id` lies after `after`, compared as SQLite
    compares a JSON value with an integer: numbers by value, text (or an object, an array)
    after every number, null never."""
    try:
        value = json.loads(body)["source"]["replay_id"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return False
    if value is None:
        return False
    if isinstance(value, bool | int | float):
        return value > after
    return True


def replay_text(body: bytes) -> str | None:
    """A streamed body's `source.replay_id` when it is text (a Pub/Sub one, base64)."""
    try:
        value = json.loads(body)["source"]["replay_id"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    return value if isinstance(value, str) else None


def check_event(event: NewEvent) -> None:
    """What the SQLite engine's NOT NULL columns refuse, refused here before anything is
    stored, so a bad event rolls the whole ingest back as there."""
    if not isinstance(event.body, bytes | bytearray | memoryview):
        raise StoreError(f"event {event.event_id!r}: its body is no bytes")
    if not isinstance(event.event_id, str) or not isinstance(event.occurred_at, datetime):
        raise StoreError(f"event {event.event_id!r}: no event id or no change time")


def recent_activity(
    deliveries: Iterable[DeliveryRecord], now: datetime, within: timedelta, latest: int
) -> RecentActivity:
    """`Store.recent_activity` over the engine's rows."""
    cutoff = now - within
    found = [
        FinishedDelivery(
            id=d.id,
            endpoint=d.endpoint,
            trigger=d.event.trigger,
            event_id=d.event.event_id,
            record_id=d.event.record_id,
            change=d.event.change,
            status="delivered" if d.status == "delivered" else "dead",
            last_status=d.last_status,
            occurred_at=d.event.occurred_at,
            finished_at=d.finished_at,
            body=d.event.body,
        )
        for d in deliveries
        if d.finished_at is not None and d.finished_at >= cutoff
        if d.status in ("delivered", "dead")
    ]
    return RecentActivity(
        now_minute=epoch_minute(now),
        tallies=tally([(f.endpoint, f.status, f.finished_at) for f in found]),
        latest=newest(found, latest),
    )
