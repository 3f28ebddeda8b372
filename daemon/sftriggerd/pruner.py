"""Keeps the store small: deletes delivered deliveries older than `store.retention`.

Pruning is housekeeping: a store that fails it now (locked by another process past the busy
timeout, a full disk) may take it later, so a `StoreError` is logged and retried after a
back-off that doubles up to the prune interval, and never ends the part.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from .errors import StoreError
from .logs import get_logger
from .store.base import Store

log = get_logger(__name__)


def retry_delay_s(failures: int, first_s: float, most_s: float) -> float:
    """The wait after `failures` failed prunes in a row: first_s, doubling, at most most_s."""
    return min(most_s, first_s * 2.0 ** min(max(failures - 1, 0), 32))


class Pruner:
    name = "pruner"

    def __init__(
        self,
        store: Store,
        retention: timedelta,
        every: timedelta = timedelta(hours=1),
        retry_after: timedelta = timedelta(seconds=10),
    ):
        self._store = store
        self._retention = retention
        self._every_s = every.total_seconds()
        self._retry_after_s = retry_after.total_seconds()
        # Prunes that failed in a row (0 after one succeeds).
        self.failures = 0

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            wait_s = await self._prune_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), wait_s)

    async def _prune_once(self) -> float:
        """Prunes once; returns how long to wait before the next."""
        try:
            removed = await self._store.prune(self._retention)
        except StoreError as exc:
            self.failures += 1
            wait_s = retry_delay_s(self.failures, self._retry_after_s, self._every_s)
            log.warning("prune_failed", error=str(exc), failures=self.failures, retry_in_s=wait_s)
            return wait_s
        self.failures = 0
        if removed:
            log.info("deliveries_pruned", count=removed)
        return self._every_s

    def not_ready_reasons(self) -> list[str]:
        return []
