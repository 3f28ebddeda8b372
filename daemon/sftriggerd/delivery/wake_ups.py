"""Wake-ups from other replicas: listens to the store's notifications of committed due work
and wakes this replica's endpoint workers at once, instead of at their next timed look.

A notification is a hint, never the work: when listening fails, this backs off and listens
again, and meanwhile each worker's own timed look (`max_idle`) still finds everything, only
later. Every (re)connection starts with a wake-up for every endpoint, since notifications
sent while nobody listened are gone. The same connection hears leases released by other
replicas (a hand-over), passed to `on_lease_released` (the daemon's leadership, which then
runs a round at once instead of at its next one).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Sequence

from ..logs import get_logger
from ..store.wake_ups import LeaseReleased, WakeUpSource

log = get_logger(__name__)

# Waits before listening again after the listener failed, growing to the last; a listener
# that delivered a wake-up since its last failure starts over at the first.
RELISTEN_DELAYS_S = (0.5, 1.0, 2.0, 5.0, 10.0)


class WakeUpListener:
    """Turns the store's wake-ups into `notify(endpoint_names)` calls."""

    def __init__(
        self,
        source: WakeUpSource,
        endpoints: Sequence[str],
        notify: Callable[[Iterable[str]], None],
        delays_s: Sequence[float] = RELISTEN_DELAYS_S,
    ) -> None:
        self._source = source
        self._endpoints = tuple(endpoints)
        self._notify = notify
        self._delays_s = tuple(delays_s)
        # Wake-ups heard (for tests and logs): each (re)connection counts one for all.
        self.heard = 0
        self.on_lease_released: Callable[[str], None] = _ignored

    async def run(self, stopping: asyncio.Event) -> None:
        """Listens until `stopping`; never fails (the timed looks are the fallback)."""
        listening = asyncio.create_task(self._listen_forever())
        try:
            await stopping.wait()
        finally:
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening

    async def _listen_forever(self) -> None:
        failures = 0
        while True:
            heard_before = self.heard
            try:
                await self._listen()
            except Exception as exc:  # any failure: listen again, later
                if self.heard > heard_before:
                    failures = 0
                delay_s = self._delays_s[min(failures, len(self._delays_s) - 1)]
                failures += 1
                log.warning("wake_ups_lost", error=str(exc) or type(exc).__name__, retry_s=delay_s)
                await asyncio.sleep(delay_s)

    async def _listen(self) -> None:
        wake_ups = self._source.wake_ups()
        try:
            async for wake_up in wake_ups:
                self.heard += 1
                if isinstance(wake_up, LeaseReleased):
                    self.on_lease_released(wake_up.trigger)
                elif wake_up.endpoint is None:
                    log.info("wake_ups_listening")
                    self._notify(self._endpoints)
                else:
                    self._notify((wake_up.endpoint,))
        finally:
            await wake_ups.aclose()
        raise ConnectionError("the store's wake-ups ended")


def _ignored(trigger: str) -> None:
    """No leadership listens (a dispatcher on its own)."""
