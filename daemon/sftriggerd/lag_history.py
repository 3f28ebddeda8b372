"""Each trigger's lag over the last hour, in memory, for the status page's lag charts.

The samples are the values the per-trigger lag gauge gets (`StatusReporter` records them as
it sets the gauge), so the chart and the metric never disagree about what lag is. One value
per minute per trigger is kept: the highest seen in that minute, so a short spike between
two page reads still shows. At most `minutes` of them per trigger, so memory stays bounded
however long the process runs. Nothing is written to the store: after a restart the history
starts empty, and the page says since when it has one.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

HOUR_MINUTES = 60


def minute_of(at_s: float) -> int:
    """Whole minutes since the epoch: a sample at 18:02:59.9 belongs to 18:02."""
    return int(at_s // 60)


@dataclass(frozen=True)
class LagMinutes:
    """A trigger's last `len(values)` minutes, oldest first; None: no sample that minute."""

    values: list[float | None]
    # When this process first sampled the trigger (seconds since the epoch), or None.
    since_s: float | None

    @property
    def latest(self) -> float | None:
        return next((value for value in reversed(self.values) if value is not None), None)

    @property
    def highest(self) -> float | None:
        return max((value for value in self.values if value is not None), default=None)


class LagHistory:
    def __init__(self, clock: Callable[[], float] = time.time, minutes: int = HOUR_MINUTES) -> None:
        self._clock = clock
        self._minutes = minutes
        # Per trigger: minute -> highest lag in it, in the order the minutes came.
        self._buckets: dict[str, OrderedDict[int, float]] = {}
        self._since: dict[str, float] = {}
        self.started_s = clock()

    def record(self, trigger: str, lag_s: float) -> None:
        """One sample of `trigger`'s lag, now."""
        now_s = self._clock()
        minute = minute_of(now_s)
        buckets = self._buckets.setdefault(trigger, OrderedDict())
        self._since.setdefault(trigger, now_s)
        # The clock stepped back (a VM resumed, NTP corrected it): the minutes held after
        # now were stamped by a wrong clock. Dropped, so that now goes on being recorded.
        self._drop_after(buckets, minute)
        buckets[minute] = max(lag_s, buckets.get(minute, lag_s))
        self._drop_before(buckets, minute - self._minutes + 1)

    def forget(self, trigger: str) -> None:
        """The trigger is no longer led here (or no longer exists): its old minutes would
        show a lag nobody is measuring any more."""
        self._buckets.pop(trigger, None)
        self._since.pop(trigger, None)

    def kept(self, trigger: str) -> dict[int, float]:
        """The minutes held for `trigger` (minute since the epoch -> highest lag)."""
        return dict(self._buckets.get(trigger, {}))

    def last_hour(self, trigger: str) -> LagMinutes:
        """`minutes` values ending with the current minute, oldest first."""
        last = minute_of(self._clock())
        first = last - self._minutes + 1
        buckets = self._buckets.get(trigger)
        if buckets is not None:
            self._drop_before(buckets, first)
            self._drop_after(buckets, last)
        held: dict[int, float] | OrderedDict[int, float] = buckets or {}
        return LagMinutes(
            values=[held.get(minute) for minute in range(first, last + 1)],
            since_s=self._since.get(trigger),
        )

    @staticmethod
    def _drop_after(buckets: OrderedDict[int, float], last: int) -> None:
        while buckets and next(reversed(buckets)) > last:
            buckets.popitem(last=True)

    @staticmethod
    def _drop_before(buckets: OrderedDict[int, float], first: int) -> None:
        while buckets and next(iter(buckets)) < first:
            buckets.popitem(last=False)
