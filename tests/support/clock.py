"""A store clock a test can move: the wall clock shifted by what the test advanced it.

It runs with real time, so a store on it still works with parts that wait for real (a
dispatcher, a worker's sleep), and a test jumps ahead (`advance`) instead of passing times
in: a lease running out, a retry coming due, a delivery ageing past max_age or retention.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest


class ShiftedClock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, by: timedelta) -> None:
        """Moves the clock `by` ahead (or back, given a negative duration)."""
        self.offset += by


@pytest.fixture
def clock() -> ShiftedClock:
    """The clock the test's `store` runs on."""
    return ShiftedClock()


class FrozenClock:
    """A clock that stands still until advanced: for exact times in a test's assertions."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by
