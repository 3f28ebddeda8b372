"""Waiting for something that happens on another task or thread, without fixed sleeps."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable


async def eventually(
    check: Callable[[], bool] | Callable[[], Awaitable[bool]], timeout_s: float = 5.0
) -> None:
    """Returns once `check` (plain or async) is true; fails the test after `timeout_s`."""
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                outcome = check()
                if inspect.isawaitable(outcome):
                    outcome = await outcome
                if outcome:
                    return
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"not true within {timeout_s}s") from None
