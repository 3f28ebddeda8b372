"""Stopping a led source: told to stop, then cut off when its lease is about to run out; the
stops under way in the background, by trigger; and the watchdog that stops every source
whose lease was not renewed in time, whatever the leadership loop is doing (a renewal stuck
on a store that stopped answering).

Kept apart from `leadership` (which runs the rounds) so that the loop reads on its own."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import structlog

from .held_leases import HeldLease
from .logs import get_logger

log = get_logger(__name__)


async def stop_run(held: HeldLease, within_s: float) -> None:
    """Tells the source to stop, and cuts it off after `within_s`."""
    held.stopping.set()
    task = held.task
    if task is None or task.done():
        return
    try:
        done, _ = await asyncio.wait({task}, timeout=max(0.0, within_s))
    except asyncio.CancelledError:
        task.cancel()  # never left running unwatched (a round cut off by its timeout)
        raise
    if not done:
        log.warning("led_source_cut_off", part=task.get_name())
        task.cancel()
        await asyncio.wait({task})


class BackgroundStops:
    """The sources being stopped in the background (shed or lost), by trigger: not taken
    again until stopped, so that a source never runs twice at once. A failed stop is said on
    `said_on` (the leadership's logger, under whose name it has always been said)."""

    def __init__(self, said_on: structlog.stdlib.BoundLogger) -> None:
        self._said_on = said_on
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def __contains__(self, trigger: object) -> bool:
        return trigger in self._tasks

    def __bool__(self) -> bool:
        return bool(self._tasks)

    def start(self, trigger: str, stop: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(stop, name=f"leadership-stop:{trigger}")
        self._tasks[trigger] = task

        def done(task: asyncio.Task[None]) -> None:
            if self._tasks.get(trigger) is task:
                del self._tasks[trigger]
            if not task.cancelled() and task.exception() is not None:
                error = str(task.exception())
                self._said_on.warning("led_source_stop_failed", trigger=trigger, error=error)

        task.add_done_callback(done)

    async def wait(self, timeout_s: float) -> None:
        """Waits up to `timeout_s` for every stop under way (none cut off)."""
        await asyncio.wait(set(self._tasks.values()), timeout=timeout_s)

    async def all_done(self) -> None:
        """Waits for every stop under way, whatever became of it."""
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)


async def watch(
    held_leases: Mapping[str, HeldLease],
    left_s: Callable[[HeldLease], float],
    monotonic: Callable[[], float],
    stopping: asyncio.Event,
) -> None:
    """Until `stopping`: stops each source in `held_leases` (read afresh each time) once its
    `stop_at_s` has passed, giving it what `left_s` says is left of its lease to drain."""
    while not stopping.is_set():
        now_s = monotonic()
        overdue = [
            held
            for held in held_leases.values()
            if now_s >= held.stop_at_s and held.task is not None and not held.task.done()
        ]
        for held in overdue:
            log.warning("lease_unrenewed_stopping_source", trigger=held.lease.trigger)
        await asyncio.gather(*(stop_run(held, left_s(held)) for held in overdue))
        deadlines = [h.stop_at_s for h in held_leases.values() if h.task and not h.task.done()]
        wait_s = min(deadlines, default=now_s + 1.0) - monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), min(max(wait_s, 0.01), 1.0))


async def end_watch(watchdog: asyncio.Task[None]) -> None:
    """Waits for the watchdog, told to end, to end: a source it is stopping is given the rest
    of its drain (cancelled, the watchdog would cut it off), and its failure is seen."""
    try:
        await watchdog
    except asyncio.CancelledError:
        watchdog.cancel()  # past the shutdown grace: nothing left unwatched
        raise
    except Exception as exc:
        log.error("leadership_watchdog_failed", error=str(exc) or type(exc).__name__)
