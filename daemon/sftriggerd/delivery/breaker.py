"""A per-endpoint circuit breaker: a pure state machine over an injected clock.

    closed ──N consecutive failures──► open ──cooldown passed──► half_open
      ▲                                  ▲                          │ one probe
      └───────── probe succeeded ────────┼──── probe failed ◄───────┘ (cooldown doubles)

While open, the dispatcher claims nothing, so an endpoint that is down costs no attempts
(and no retry budget) for the deliveries waiting on it. Any attempt that did not get a 2xx
counts as a failure: the breaker judges whether sending is worth it, not why it failed.
A success closes the breaker from any state: the endpoint evidently answers again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from ..config.settings import BreakerSettings

BreakerState = Literal["closed", "open", "half_open"]
Transition = Literal["opened", "reopened", "closed"]


@dataclass(frozen=True)
class BreakerPolicy:
    failure_threshold: int = 5
    cooldown: timedelta = timedelta(seconds=30)
    max_cooldown: timedelta = timedelta(minutes=5)

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if self.cooldown <= timedelta(0) or self.max_cooldown < self.cooldown:
            raise ValueError("need 0 < cooldown <= max_cooldown")

    @classmethod
    def from_settings(cls, settings: BreakerSettings) -> BreakerPolicy:
        return cls(settings.failure_threshold, settings.cooldown, settings.max_cooldown)


@dataclass(frozen=True)
class BreakerSnapshot:
    """What the status page shows for one endpoint."""

    state: BreakerState
    consecutive_failures: int
    opened_at: datetime | None
    cooldown: timedelta
    half_open_at: datetime | None  # when an open breaker lets its probe through


@dataclass(frozen=True)
class Admission:
    """How many sends may start now; `probe` marks the single half-open trial."""

    count: int
    probe: bool = False


class Breaker:
    def __init__(self, policy: BreakerPolicy, clock: Callable[[], datetime]) -> None:
        self.policy = policy
        self._clock = clock
        self._failures = 0
        self._opened_at: datetime | None = None
        self._cooldown = policy.cooldown
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        if self._probing or self._clock() >= self._opened_at + self._cooldown:
            return "half_open"
        return "open"

    @property
    def closed(self) -> bool:
        """True when sends go out freely; cheaper than `state` (no clock)."""
        return self._opened_at is None

    @property
    def probing(self) -> bool:
        """True while the half-open probe is out."""
        return self._probing

    def half_open_at(self) -> datetime | None:
        """When an open breaker will admit its probe; None unless open."""
        if self.state != "open" or self._opened_at is None:
            return None
        return self._opened_at + self._cooldown

    def admit(self, wanted: int) -> Admission:
        """Takes up to `wanted` send slots; in half_open, the one probe slot (once)."""
        state = self.state
        if state == "closed":
            return Admission(count=max(wanted, 0))
        if state == "open" or self._probing or wanted < 1:
            return Admission(count=0)
        self._probing = True
        return Admission(count=1, probe=True)

    def cancel_probe(self) -> None:
        """The probe slot was taken but nothing was due to send with it."""
        self._probing = False

    def record_success(self) -> Transition | None:
        self._failures = 0
        if self._opened_at is None:
            return None
        self._opened_at = None
        self._cooldown = self.policy.cooldown
        self._probing = False
        return "closed"

    def record_failure(self, probe: bool = False) -> Transition | None:
        self._failures += 1
        now = self._clock()
        if self._opened_at is None:
            if self._failures < self.policy.failure_threshold:
                return None
            self._opened_at = now
            self._cooldown = self.policy.cooldown
            return "opened"
        if probe and self._probing:
            self._opened_at = now
            self._cooldown = min(self._cooldown * 2, self.policy.max_cooldown)
            self._probing = False
            return "reopened"
        # A send that started before the breaker opened; the breaker already knows.
        return None

    def snapshot(self) -> BreakerSnapshot:
        return BreakerSnapshot(
            state=self.state,
            consecutive_failures=self._failures,
            opened_at=self._opened_at,
            cooldown=self._cooldown,
            half_open_at=self.half_open_at(),
        )
