"""What one webhook attempt came back with: an HTTP answer, or no answer at all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

# Why no answer came back: a small closed set, fit for a metric label. `connection` is a
# connection failure of no cause more specific than the others (unreachable network, ...).
FailureKind = Literal[
    "timeout",
    "refused",
    "dns",
    "tls",
    "reset",
    "connection",
    "disconnected",
    "invalid_answer",
    "request",
]
FAILURE_KINDS: tuple[FailureKind, ...] = get_args(FailureKind)


@dataclass(frozen=True)
class Answer:
    """The endpoint answered; `body` is at most the first few KiB, for the error snippet."""

    status: int
    retry_after: str | None
    body: bytes
    duration_s: float

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class Failure:
    """No usable answer; `error` is short, fit for `last_error` and logs (no secrets)."""

    kind: FailureKind
    error: str
    duration_s: float


Result = Answer | Failure
