"""Injected failures and delays, per surface, consumed one call at a time.

`POST /_emulator/fail` and `/_emulator/delay` fill this registry; the token endpoint, the REST
layer and the streaming side ask it on every call. A count of 0 clears the surface, a negative
count keeps the fault until it is cleared.

A failure may wait for the k-th request that matches it (`after`), so a test can fail page k
of a query, only requests whose path and query contain `match`, and may carry any text as
its `Retry-After` header, however malformed, because clients must survive what servers send.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Surface = Literal["rest", "cometd", "token"]
SURFACES: tuple[str, ...] = get_args(Surface)


@dataclass(frozen=True)
class Failure:
    """How one request fails: its status and, when armed with one, its Retry-After text."""

    status: int
    retry_after: str | None = None


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


@dataclass
class _ArmedFailure:
    remaining: int  # failures still to give; negative: until cleared
    failure: Failure
    pass_first: int = 0  # matching requests still let through before the first failure
    match: str = ""
    given: int = 0  # failures answered so far

    def consume(self, target: str) -> Failure | None:
        if self.remaining == 0 or self.match not in target:
            return None
        if self.pass_first > 0:
            self.pass_first -= 1
            return None
        if self.remaining > 0:
            self.remaining -= 1
        self.given += 1
        return self.failure


class FaultRegistry:
    """The concrete `Faults`."""

    def __init__(self) -> None:
        self._failures: dict[str, _ArmedFailure] = {}
        self._delays: dict[str, _Pending] = {}

    def fail(
        self,
        surface: Surface,
        count: int,
        status: int,
        *,
        retry_after: str | None = None,
        after: int = 1,
        match: str = "",
    ) -> None:
        """Fails `count` requests on `surface` whose path contains `match`, from the
        `after`-th such request on (1: the next one)."""
        self._failures[surface] = _ArmedFailure(
            count, Failure(status, retry_after), max(after - 1, 0), match
        )

    def delay(self, surface: Surface, seconds: float, count: int) -> None:
        self._delays[surface] = _Pending(count, seconds)

    def take_failure(self, surface: Surface, target: str = "") -> Failure | None:
        """How this request (path and query `target`) fails, consuming one failure; or None."""
        armed = self._failures.get(surface)
        return None if armed is None else armed.consume(target)

    def take(self, surface: Surface, target: str = "") -> int | None:
        failure = self.take_failure(surface, target)
        return None if failure is None else failure.status

    def delay_s(self, surface: Surface) -> float:
        pending = self._delays.get(surface)
        seconds = None if pending is None else pending.consume()
        return seconds or 0.0

    def pending(self) -> dict[str, dict[str, float | int | str]]:
        """What is still armed, for the answers of the control calls."""
        shown: dict[str, dict[str, float | int | str]] = {}
        for surface in SURFACES:
            failure = self._failures.get(surface)
            delay = self._delays.get(surface)
            if failure is not None and failure.remaining:
                entry = shown.setdefault(surface, {})
                entry["fail_count"] = failure.remaining
                entry["fail_status"] = failure.failure.status
                if failure.pass_first:
                    entry["fail_after"] = failure.pass_first + 1
                if failure.match:
                    entry["fail_match"] = failure.match
                if failure.given:
                    entry["fail_given"] = failure.given
                if failure.failure.retry_after is not None:
                    entry["retry_after"] = failure.failure.retry_after
            if delay is not None and delay.remaining:
                shown.setdefault(surface, {})["delay_count"] = delay.remaining
                shown[surface]["delay_s"] = delay.value
        return shown
