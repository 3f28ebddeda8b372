"""Wake-ups across processes: what an engine offers when other processes sharing its store
can tell this one that due work was committed, or that a trigger's lease was released for a
hand-over (PostgreSQL's LISTEN/NOTIFY).

An engine offers them by having a `wake_ups()` method (`WakeUpSource`); one that has none
(SQLite: one process owns the file) is asked nothing. `offered_wake_ups` is the one place
that asks, so nothing else looks at which engine a store is.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class WakeUp:
    """Due work may be waiting: for `endpoint`, or for any endpoint when None (the listener
    has just (re)connected and may have missed notifications)."""

    endpoint: str | None


@dataclass(frozen=True)
class LeaseReleased:
    """A replica released `trigger`'s lease (a hand-over on shutdown, or giving up its share):
    a follower may take it now rather than at its next round. A hint like the others: one
    missed is made up by that round."""

    trigger: str


@runtime_checkable
class WakeUpSource(Protocol):
    def wake_ups(self) -> AsyncGenerator[WakeUp | LeaseReleased, None]:
        """Wake-ups from every process's commits, on a connection of their own; the first
        is `WakeUp(None)`, and so is the first after each reconnection."""
        ...


def offered_wake_ups(store: object) -> WakeUpSource | None:
    """The store as a source of wake-ups, or None when its engine offers none."""
    return store if isinstance(store, WakeUpSource) else None
