"""Injected failures and delays, per surface, consumed one call at a time.

`POST /_emulator/fail` and `/_emulator/delay` fill this registry; the token endpoint, the REST
layer and the streaming side ask it on every call. A count of 0 clears the surface, a negative
count keeps the fault until it is cleared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Surface = Literal["rest", "cometd", "token"]
SURFACES: tuple[str, ...] = get_args(Surface)


@dataclass
class _Pending:
    remaining: int
    value: float

    def consume(self) -> float | None:
        if self.remaining == 0:
            return None
        if self.remaining > 0:
            self.remaining -= 1
        return self.value


class FaultRegistry:
    """The concrete `Faults`."""

    def __init__(self) -> None:
        self._failures: dict[str, _Pending] = {}
        self._delays: dict[str, _Pending] = {}

    def fail(self, surface: Surface, count: int, status: int) -> None:
        self._failures[surface] = _Pending(count, float(status))

    def delay(self, surface: Surface, seconds: float, count: int) -> None:
        self._delays[surface] = _Pending(count, seconds)

    def take(self, surface: Surface) -> int | None:
        pending = self._failures.get(surface)
        status = None if pending is None else pending.consume()
        return None if status is None else int(status)

    def delay_s(self, surface: Surface) -> float:
        pending = self._delays.get(surface)
        seconds = None if pending is None else pending.consume()
        return seconds or 0.0

    def pending(self) -> dict[str, dict[str, float | int]]:
        """What is still armed, for the answers of the control calls."""
        shown: dict[str, dict[str, float | int]] = {}
        for surface in SURFACES:
            failure = self._failures.get(surface)
            delay = self._delays.get(surface)
            if failure is not None and failure.remaining:
                shown.setdefault(surface, {})["fail_count"] = failure.remaining
                shown[surface]["fail_status"] = int(failure.value)
            if delay is not None and delay.remaining:
                shown.setdefault(surface, {})["delay_count"] = delay.remaining
                shown[surface]["delay_s"] = delay.value
        return shown
