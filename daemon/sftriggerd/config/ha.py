"""The `ha` section: several replicas sharing one PostgreSQL store."""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from .durations import format_duration
from .fields import Duration, Section

MIN_TAKEOVER = timedelta(seconds=1)
# From here on, the watchdog's margin and the renewal's slack are each at least a second.
STEADY_TAKEOVER = timedelta(seconds=6)
MAX_TAKEOVER = timedelta(hours=1)


class HaSettings(Section):
    """Several replicas on one PostgreSQL store: each trigger's source runs on one replica
    at a time, under a lease that its holder renews; on a SQLite store this has no effect."""

    # A leader that stops renewing loses its triggers to another replica within this.
    takeover: Duration = timedelta(seconds=15)
    # How often a leader renews its leases; unset, a third of takeover.
    renew_every: Duration | None = None
    # `poll` for PgBouncer in transaction mode, where LISTEN never hears a NOTIFY.
    wake_ups: Literal["notify", "poll"] = "notify"
    # Shown in /api/replicas and kept with each lease; unset, hostname-pid.
    replica_name: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]*$"
    )

    @field_validator("takeover")
    @classmethod
    def _takeover_in_range(cls, value: timedelta) -> timedelta:
        # With renew_every at most a third of takeover, the watchdog's margin (the drain
        # time a source is given before its lease runs out) and the renewal's slack (how late
        # the next renewal may come before a healthy source is stopped) are each at least a
        # sixth of takeover (`held_leases.Timing`): from 6s on (STEADY_TAKEOVER), at least a
        # second each, so a slow query or a loaded machine costs a healthy leader nothing.
        # Shorter ones (down to 1s, for tests and drills) are accepted with a warning at
        # start: they cost restarts of healthy sources, never a double write (the epoch
        # fences those). Above an hour a dead leader's triggers would sit unread too long.
        if not MIN_TAKEOVER <= value <= MAX_TAKEOVER:
            raise ValueError(
                f"must be between {format_duration(MIN_TAKEOVER)} and "
                f"{format_duration(MAX_TAKEOVER)}"
            )
        return value

    @field_validator("renew_every")
    @classmethod
    def _renewed_three_times_per_takeover(
        cls, value: timedelta | None, info: ValidationInfo
    ) -> timedelta | None:
        if value is None:
            return value
        if value <= timedelta(0):
            raise ValueError("must be longer than 0s")
        takeover = info.data.get("takeover")
        # A lease lasts takeover - renew_every, and the watchdog stops a source a quarter of
        # that before it runs out: at a third or less, the next renewal always comes before
        # (above it, near half, a healthy source would be stopped every round), and one lost
        # renewal (a slow query, a reconnect) does not hand a live leader's triggers over.
        if isinstance(takeover, timedelta) and value * 3 > takeover:
            raise ValueError(
                f"{format_duration(value)} must be at most a third of ha.takeover "
                f"({format_duration(takeover)}), so that each renewal comes before the "
                "watchdog stops the sources of a leader that failed to renew"
            )
        return value

    @property
    def tight(self) -> bool:
        """Whether takeover is below STEADY_TAKEOVER (warned about at start)."""
        return self.takeover < STEADY_TAKEOVER

    @property
    def resolved_renew_every(self) -> timedelta:
        """How often leases are renewed: as configured, or a third of takeover."""
        return self.renew_every if self.renew_every is not None else self.takeover / 3

    @property
    def resolved_replica_name(self) -> str:
        """This replica's name: as configured, or hostname-pid (a pod's name in Kubernetes)."""
        if self.replica_name is not None:
            return self.replica_name
        return f"{socket.gethostname()}-{os.getpid()}"
