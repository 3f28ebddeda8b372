"""A trigger's source as leadership runs it: what it must offer, and the wrapper that ends its
run when the store refuses a write for a lost lease."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from .logs import get_logger
from .store.leadership import LeaseLostError

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
