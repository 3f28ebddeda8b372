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
        it has to drain before it is cut off. A quarter of the lease, but never so much that
        the source is told to stop before the next round's renewal is due: then at most half
        of what the lease lasts beyond one renew period (with `renew_every` at most a third
        of `takeover`, as the configuration has it, the quarter is always the lesser)."""
        lasting_s = self.lasting.total_seconds()
        beyond_renewal_s = lasting_s - self.renew_every.total_seconds()
        return min(lasting_s / 4, beyond_renewal_s / 2)

    @property
    def renewal_slack_s(self) -> float:
        """How late the next round's renewal may be answered (from one renew period after
        the last was sent) before the watchdog stops a healthy source: the time a round
        has for its own queries and a loaded machine's delays.

        With `renew_every` at most a third of `takeover`, this and `margin_s` are each at
        least `takeover` / 6 (at a third, both are exactly that); the configuration's
        minimum `ha.takeover` of 6s makes both at least a second."""
        return self.lasting.total_seconds() - self.renew_every.total_seconds() - self.margin_s


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
