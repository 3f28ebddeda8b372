"""The clock an engine in this process stamps and compares times with (see `base`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    """Now, in UTC: every engine's default."""
    return datetime.now(UTC)
