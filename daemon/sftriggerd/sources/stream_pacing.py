"""How long the streaming loop waits between sessions: it counts the failed sessions in a
row, and a wait ends early when the source is told to stop."""

from __future__ import annotations

import asyncio
import contextlib

from .stream_reader import backoff_delay_s, immediate_once_delay_s

BACKOFF_BASE_S = 0.5


class Pacer:
    def __init__(self, cap_s: float, base_s: float = BACKOFF_BASE_S) -> None:
        self.cap_s = cap_s
        self.base_s = base_s
        self.failures = 0  # failed sessions since the last answered long-poll

    def healthy(self) -> None:
        self.failures = 0

    def back_off_s(self) -> float:
        """One more failure: its back-off, never zero."""
        self.failures += 1
        return backoff_delay_s(self.failures, base_s=self.base_s, cap_s=self.cap_s)

    def pause_s(self) -> float:
        """One more failure of a kind that is routine once: no wait the first time."""
        self.failures += 1
        return immediate_once_delay_s(self.failures, base_s=self.base_s, cap_s=self.cap_s)


async def wait(stopping: asyncio.Event, delay_s: float) -> None:
    """Sleeps `delay_s`, or less when the source is told to stop."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), delay_s)
