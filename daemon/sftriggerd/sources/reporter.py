"""Keeps the per-trigger gauges true between source events: a stalled or disconnected
source stops updating its own numbers, so they are read from its status on a clock.

Only the replica that leads a trigger reports its gauges: another one's status is what its
source knew when it last ran there (a lag that only grows, a stream still "connected"), and
the alerts take the highest value over the replicas, so it would hide or fake a problem.

The same lag goes into the status page's lag history (when one is given), so the chart
shows the gauge's values, and a trigger led elsewhere has no history here."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from ..lag_history import LagHistory
from ..metrics import Metrics
from .status import TriggerStatus


def _every_trigger(trigger: str) -> bool:
    return True


class StatusReporter:
    name = "status-reporter"

    def __init__(
        self,
        statuses: Sequence[TriggerStatus],
        metrics: Metrics,
        every_s: float = 5.0,
        leads: Callable[[str], bool] = _every_trigger,
        history: LagHistory | None = None,
    ) -> None:
        self._statuses = statuses
        self._metrics = metrics
        self._every_s = every_s
        self._leads = leads
        self._history = history

    def report(self) -> None:
        for status in self._statuses:
            if not self._leads(status.name):
                self._forget(status.name)
                continue
            lag = status.lag_s()
            if lag is not None:
                self._metrics.checkpoint_lag_seconds.labels(trigger=status.name).set(lag)
                if self._history is not None:
                    self._history.record(status.name, lag)
            if status.mode == "streaming":
                connected = 1 if status.connected else 0
                self._metrics.stream_connected.labels(trigger=status.name).set(connected)

    def _forget(self, trigger: str) -> None:
        if self._history is not None:
            self._history.forget(trigger)
        for gauge in (self._metrics.checkpoint_lag_seconds, self._metrics.stream_connected):
            with contextlib.suppress(KeyError):  # not reported here (yet)
                gauge.remove(trigger)

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            self.report()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self._every_s)

    def not_ready_reasons(self) -> list[str]:
        return []
