"""A trigger's source as leadership runs it: what it must offer, the wrapper that ends its
run when the store refuses a write for a lost lease, and the fence each run writes under."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from .logs import get_logger
from .store.leadership import Fence, LeaseLostError

log = get_logger(__name__)


class LedSource(Protocol):
    """A trigger's source as leadership drives it (`sources.restartable.RestartableSource`,
    whose `rebuild()`, when a source has one, makes its next run start afresh from the
    position in the store)."""

    name: str

    async def run(self, stopping: asyncio.Event) -> None: ...

    def not_ready_reasons(self) -> list[str]: ...


class Runnable(Protocol):
    name: str

    async def run(self, stopping: asyncio.Event) -> None: ...


# How a source is run: by the supervisor (restarted after failures) in the daemon.
RunSource = Callable[[Runnable, asyncio.Event], Awaitable[None]]


async def run_plainly(source: Runnable, stopping: asyncio.Event) -> None:
    await source.run(stopping)


class StopsOnLostLease:
    """The source as the supervisor runs it: a write refused for a lost lease ends the run
    instead of counting as a failure to restart from."""

    def __init__(self, source: LedSource, stopping: asyncio.Event, round_now: asyncio.Event):
        self.source = source
        self.name = source.name
        self.status = getattr(source, "status", None)
        self._stopping = stopping
        self._round_now = round_now

    async def run(self, stopping: asyncio.Event) -> None:
        try:
            await self.source.run(stopping)
        except LeaseLostError as exc:
            log.warning("led_source_fenced_out", part=self.name, error=str(exc))
            self._stopping.set()
            self._round_now.set()

    def not_ready_reasons(self) -> list[str]:
        return self.source.not_ready_reasons()


@dataclass
class _RunFence:
    fence: Fence
    ended: bool = False


# The fence of the run each task belongs to, by trigger: set at the start of a run's task, so
# that every task the source creates (a flush, a worker) inherits it. A write outlasting its
# run (cut off, yet a commit still in flight) carries its own run's lease, not the one this
# replica holds now: the store refuses it once the trigger was taken over, even by this
# replica again.
_run_fences: contextvars.ContextVar[Mapping[str, _RunFence] | None] = contextvars.ContextVar(
    "sftriggerd_run_fences", default=None
)


@contextlib.contextmanager
def fenced_run(trigger: str, fence: Fence) -> Iterator[None]:
    """Within it, the current task (and those it creates) writes `trigger` under `fence`;
    after it, under none that the store takes."""
    run = _RunFence(fence)
    token = _run_fences.set({**(_run_fences.get() or {}), trigger: run})
    try:
        yield
    finally:
        run.ended = True
        _run_fences.reset(token)


def run_fence(trigger: str) -> Fence | None:
    """The fence of the run the calling task belongs to (None: no run's task). A run that has
    ended writes under epoch 0, which the store refuses: a task it left behind writes
    nothing, even beside a successor run under the same lease."""
    run = (_run_fences.get() or {}).get(trigger)
    if run is None:
        return None
    return Fence(run.fence.replica, 0) if run.ended else run.fence
