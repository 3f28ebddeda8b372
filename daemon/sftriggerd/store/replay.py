"""What a resend, a bulk redrive and a rewind's resend ask of the store: plain values.

A resend puts a finished delivery (delivered or dead) back in the queue as it is: the same
row, so the same event id (the `webhook-id`) and the same place in its record's order. A
redrive is a resend of dead deliveries only. Deliveries that are pending or in flight are
left alone and counted as such, which makes every bulk operation idempotent: run twice, the
second run finds them pending and queues nothing again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .records import DeliveryStatus

# What each operation takes back into the queue.
REDRIVABLE: frozenset[DeliveryStatus] = frozenset({"dead"})
RESENDABLE: frozenset[DeliveryStatus] = frozenset({"dead", "delivered"})


@dataclass(frozen=True)
class Selection:
    """Which deliveries an operation looks at; every given filter must hold.

    `since`/`until` bound when the delivery was made (its change stored, as `deliveries
    list` shows it), `until` exclusive. `occurred_since` and `after_replay_id` select by the
    event instead, for a rewind's resend: events that changed at or after a time, or every
    event of the trigger stored from the first one whose replay id lies after the given one
    (with the gap fills stored among them). `after_replay_token` is the same for a replay
    id that has no order (Pub/Sub's, as the body's base64 text): every event of the trigger
    stored after the last one carrying it; none when no stored event carries it."""

    delivery_id: int | None = None
    endpoint: str | None = None
    trigger: str | None = None
    statuses: frozenset[DeliveryStatus] = RESENDABLE
    since: datetime | None = None
    until: datetime | None = None
    occurred_since: datetime | None = None
    after_replay_id: int | None = None
    after_replay_token: str | None = None

    @property
    def by_replay(self) -> bool:
        """Whether it selects from a replay id (which needs its trigger named)."""
        return self.after_replay_id is not None or self.after_replay_token is not None


@dataclass(frozen=True)
class Requeued:
    """What a resend or redrive did: deliveries made pending now, and those it matched that
    were pending or in flight already (left alone)."""

    requeued: int
    already_pending: int
    endpoints: frozenset[str] = frozenset()  # the endpoints that got work
