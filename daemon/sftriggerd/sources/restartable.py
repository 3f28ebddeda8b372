"""A trigger's source that can be stopped, changed under and started afresh while the daemon
runs: what a rewind through the admin API needs.

The checkpoint may only move back while nothing writes it, so `restart` stops the running
source first (it drains on its own; cut off if it takes longer than `stop_timeout_s`, which
loses nothing: a batch is stored whole or not at all), then runs the caller's work (the
rewind), then builds a new source from the settings, so no position held in memory survives
(a poller's watermark, a stream's time reached). The supervisor sees one part throughout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from ..logs import get_logger

log = get_logger(__name__)
T = TypeVar("T")
# How long a cancelled source gets to end: it ends at its next await, unless it waits on
# something shielded (a write in flight); past this it is logged and left, its writes refused
# by the store once its run is over (`led_sources.run_fence`).
_CANCEL_GRACE_S = 1.0


class Source(Protocol):
    name: str

    async def run(self, stopping: asyncio.Event) -> None: ...

    def not_ready_reasons(self) -> list[str]: ...


class RestartableSource:
    def __init__(
        self, trigger: str, build: Callable[[], Source], stop_timeout_s: float = 10.0
    ) -> None:
        self.trigger = trigger
        self._build = build
        self._source = build()
        self.name = self._source.name
        # The supervisor marks a failed trigger through its status (shared by every build).
        self.status: Any = getattr(self._source, "status", None)
        self._stop_timeout_s = stop_timeout_s
        self._running: asyncio.Task[None] | None = None
        self._stop_running: asyncio.Event | None = None
        self._swapped: asyncio.Future[None] | None = None  # set while a restart is under way
        self._lock = asyncio.Lock()

    def not_ready_reasons(self) -> list[str]:
        return self._source.not_ready_reasons()

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            if self._swapped is not None:
                await asyncio.shield(self._swapped)
                continue
            local = asyncio.Event()
            task = asyncio.create_task(self._source.run(local), name=self.name)
            self._running, self._stop_running = task, local
            try:
                await _until_either(task, stopping)
                if not task.done():  # stopping: let the source drain
                    local.set()
                    await _finish(task, self._stop_timeout_s)
            except asyncio.CancelledError:
                # Past the shutdown grace, or cut off by leadership: ended before this run
                # counts as over, so that nothing of it writes beside the next run.
                task.cancel()
                await _after_cancel(task, _CANCEL_GRACE_S)
                raise
            finally:
                self._running = self._stop_running = None
            if self._swapped is not None and not stopping.is_set():
                continue  # stopped for a restart: the loop waits for it, then starts afresh
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error  # the supervisor restarts the part
            return

    def rebuild(self) -> None:
        """Builds a new source from the settings for the next run, so that it starts from
        the position in the store, not one held in memory (leadership: another replica may
        have moved the checkpoint since this one last ran). Only while it is not running."""
        if self._running is not None:
            raise RuntimeError(f"{self.name} is running; stop it before rebuilding")
        self._source = self._build()
        if self.status is not None:
            self.status.restarting()

    async def restart(self, work: Callable[[], Awaitable[T]]) -> T:
        """Stops the source, runs `work`, and starts a newly built source; `work`'s result."""
        async with self._lock:
            swapped: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._swapped = swapped
            try:
                if self._running is not None and self._stop_running is not None:
                    self._stop_running.set()
                    await _finish(self._running, self._stop_timeout_s)
                result = await work()
                self._source = self._build()
                if self.status is not None:  # the old position's text is no longer true
                    self.status.restarting()
                log.info("source_restarted", part=self.name)
                return result
            finally:
                self._swapped = None
                swapped.set_result(None)


async def _until_either(task: asyncio.Task[None], stopping: asyncio.Event) -> None:
    stop = asyncio.create_task(stopping.wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()


async def _after_cancel(task: asyncio.Task[None], timeout_s: float) -> None:
    """Waits for a cancelled `task` to end, for at most `timeout_s` (a source that swallows
    the cancellation is logged and left, rather than hang its caller)."""
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        log.error("source_ignores_cancellation", part=task.get_name())


async def _finish(task: asyncio.Task[None], timeout_s: float) -> None:
    """Waits for `task` to end, cancelling it past the timeout; never raises its error."""
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        log.warning("source_stop_timeout", part=task.get_name())
        task.cancel()
        await asyncio.wait({task})
