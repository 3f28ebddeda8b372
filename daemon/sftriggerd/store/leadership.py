"""What the store keeps for leadership: one lease per trigger, and the replicas that share
the store.

A trigger's source is the only writer of its checkpoint, so it runs on one replica at a
time: the one holding the trigger's lease. A lease lasts until `expires_at` (the store's
clock) unless its holder renews it; a new holder gets the next `epoch`. The epoch is a
fencing token: `ingest` and `rewind` given a `Fence` check it inside their transaction, so
a replica that paused past its lease (a long GC, a frozen VM) and wakes up still thinking
it leads writes nothing once another replica took the trigger over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..errors import StoreError


class LeaseLostError(StoreError):
    """A fenced write came from a replica that no longer holds the trigger's lease (another
    replica took it over, or it ran out): nothing was written."""

    def __init__(self, trigger: str, fence: Fence) -> None:
        self.trigger = trigger
        self.fence = fence
        super().__init__(
            f"trigger {trigger}: replica {fence.replica} no longer holds its lease"
            f" (epoch {fence.epoch}); nothing written"
        )


@dataclass(frozen=True)
class Fence:
    """Who writes for a trigger, under which lease: the holder and its epoch."""

    replica: str
    epoch: int


@dataclass(frozen=True)
class TriggerLease:
    trigger: str
    holder: str
    epoch: int
    acquired_at: datetime
    # The store's clock; a released lease expires at the moment it was released.
    expires_at: datetime
    # Whether it was still running when read (by the store's clock, not the reader's).
    live: bool
    # On an acquisition: when the previous holder's lease ended (ran out or was released);
    # None when the trigger had no lease before. What the takeover time is measured from.
    previous_ended_at: datetime | None = None

    @property
    def fence(self) -> Fence:
        return Fence(self.holder, self.epoch)


@dataclass(frozen=True)
class Replica:
    """A process sharing the store, known by its heartbeats."""

    name: str
    started_at: datetime
    heartbeat_at: datetime
