"""Keeps the per-trigger gauges true between source events: a stalled or disconnected
source stops updating its own numbers, so they are read from its status on a clock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from ..metrics import Metrics
from .status import TriggerStatus


class StatusReporter:
    name = "status-reporter"

    def __init__(
        self, statuses: Sequence[TriggerStatus], metrics: Metrics, every_s: float = 5.0
    ) -> None:
        self._statuses = statuses
        self._metrics = metrics
        self._every_s = every_s

    def report(self) -> None:
        for status in self._statuses:
            lag = status.lag_s()
            if lag is not None:
                self._metrics.checkpoint_lag_seconds.labels(trigger=status.name).set(lag)
            if status.mode == "streaming":
                connected = 1 if status.connected else 0
                self._metrics.stream_connected.labels(trigger=status.name).set(connected)

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            self.report()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self._every_s)

    def not_ready_reasons(self) -> list[str]:
        return []
