"""A held lease's timing: how long a lease lasts and when its source must stop (from
`ha.takeover` and `ha.renew_every`), and what this replica keeps for each lease it holds."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from .store.leadership import TriggerLease


@dataclass(frozen=True)
class Timing:
    """`ha.takeover` and `ha.renew_every`, and what follows from them."""

    takeover: timedelta
    renew_every: timedelta

    @property
    def lasting(self) -> timedelta:
        """How long a lease lasts from its last renewal: a follower's next round after it
        ran out still comes within `takeover`."""
        return self.takeover - self.renew_every

    @property
    def margin_s(self) -> float:
        """How long before its lease runs out an unrenewed source is told to stop: the time
        it has to drain before it is cut off."""
        return self.lasting.total_seconds() / 4


@dataclass
class HeldLease:
    """A lease this replica holds, and its source's run."""

    lease: TriggerLease
    # Monotonic: when the source must have stopped unless the lease is renewed by then.
    stop_at_s: float
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    # Shed: its source is draining, to be released once stopped; not counted in the share.
    releasing: bool = False
