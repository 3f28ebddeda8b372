"""Keeps the store small: deletes delivered deliveries older than `store.retention`."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from .logs import get_logger
from .store.base import Store

log = get_logger(__name__)


class Pruner:
    name = "pruner"

    def __init__(self, store: Store, retention: timedelta, every: timedelta = timedelta(hours=1)):
        self._store = store
        self._retention = retention
        self._every_s = every.total_seconds()

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            removed = await self._store.prune(datetime.now(UTC) - self._retention)
            if removed:
                log.info("deliveries_pruned", count=removed)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self._every_s)

    def not_ready_reasons(self) -> list[str]:
        return []
