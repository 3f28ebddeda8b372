"""Keeps the daemon's parts running: a part that fails is restarted inside the process.

A part (a trigger's source, the dispatcher, the pruner, ...) can fail on something nobody
foresaw. Ending the process for it does not help: systemd or Kubernetes start it again, the
part meets the same input again, and every other trigger and endpoint stops with it. So a
failed part is restarted here, after a back-off (1 s, doubling to 60 s; a part that ran five
minutes before failing starts over at 1 s), counted in `sftriggerd_part_restarts_total`, and
reported by `/readyz` and the status page while it is down. Only what a restart cannot cure
ends the process: a `ConfigError`. (A store that cannot open fails before any part runs.)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

from .errors import ConfigError, PartFailedError
from .logs import get_logger
from .metrics import Metrics
from .sources.status import TriggerStatus
from .urls import strip_userinfo

log = get_logger(__name__)

# An error's text is shown on the status page and in /readyz; some come from outside input.
_ERROR_CHARS = 500
# What no restart cures: the process exits (with the configuration's exit code).
_INCURABLE: tuple[type[BaseException], ...] = (ConfigError,)

PartState = Literal["running", "restarting"]


class Supervised(Protocol):
    name: str

    async def run(self, stopping: asyncio.Event) -> None: ...


@dataclass(frozen=True)
class RestartPolicy:
    first_delay_s: float = 1.0
    max_delay_s: float = 60.0
    # A part that ran this long before it failed was healthy: its back-off starts over.
    healthy_after_s: float = 300.0


def failures_in_a_row(previous: int, ran_s: float, policy: RestartPolicy) -> int:
    """The count of failures in a row after one more, that came after `ran_s` of running."""
    return 1 if ran_s >= policy.healthy_after_s else max(previous, 0) + 1


def restart_delay_s(failures: int, policy: RestartPolicy) -> float:
    """1 s after the first failure in a row, doubling each time, at most 60 s."""
    doublings = min(max(failures, 1) - 1, 64)  # 2**64 s is far past any cap
    return float(min(policy.max_delay_s, policy.first_delay_s * 2.0**doublings))


def is_incurable(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return any(is_incurable(inner) for inner in exc.exceptions)
    return isinstance(exc, _INCURABLE)


def _exit_code_of(exc: BaseException) -> int:
    if isinstance(exc, BaseExceptionGroup):
        return max((_exit_code_of(inner) for inner in exc.exceptions), default=1)
    return exc.exit_code if isinstance(exc, ConfigError) else 1


def describe_error(exc: BaseException) -> str:
    """One line for people: the class when the message is empty, no user-info, bounded."""
    text = strip_userinfo(str(exc)) or type(exc).__name__
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        text = describe_error(exc.exceptions[0])
    text = " ".join(text.split())
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"


@dataclass
class PartHealth:
    """How one part fares, for /readyz, the status page and the logs."""

    name: str
    state: PartState = "running"
    restarts: int = 0
    failures_in_a_row: int = 0
    last_error: str | None = None
    last_failed_at: datetime | None = None
    restart_at: datetime | None = None

    def not_ready_reasons(self) -> list[str]:
        if self.state != "restarting":
            return []
        return [f"{self.name}: failed ({self.last_error}); restarting"]

    def as_json(self) -> dict[str, object]:
        def when(at: datetime | None) -> str | None:
            return at.isoformat().replace("+00:00", "Z") if at else None

        return {
            "name": self.name,
            "state": self.state,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "last_failed_at": when(self.last_failed_at),
            "restart_at": when(self.restart_at),
        }


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Supervisor:
    metrics: Metrics
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = _utc_now
    health: dict[str, PartHealth] = field(default_factory=dict)

    def parts(self) -> list[PartHealth]:
        return list(self.health.values())

    def not_ready_reasons(self) -> list[str]:
        return [reason for part in self.health.values() for reason in part.not_ready_reasons()]

    async def run(self, part: Supervised, stopping: asyncio.Event) -> None:
        """Runs `part` until `stopping`, restarting it after each failure."""
        health = self.health.setdefault(part.name, PartHealth(part.name))
        # The series exists from zero, so that `increase()` in the alert sees the first restart.
        self.metrics.part_restarts.labels(part=part.name)
        while not stopping.is_set():
            started_s = self.clock()
            try:
                await part.run(stopping)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_incurable(exc):
                    error = describe_error(exc)
                    log.error("part_failed", part=part.name, error=error, restart=False)
                    failed = PartFailedError(f"{part.name} failed: {error}")
                    failed.exit_code = _exit_code_of(exc)  # 2: systemd does not restart it
                    raise failed from exc
                error = describe_error(exc)
                log.error("part_failed", part=part.name, error=error, exc_info=True)
            else:
                if stopping.is_set():
                    return
                error = "stopped on its own"
                log.error("part_exited", part=part.name)
            delay_s = self.record_failure(part, health, error, self.clock() - started_s)
            if await _stopped_within(stopping, delay_s):
                return
            health.state = "running"
            health.restarts += 1
            self.metrics.part_restarts.labels(part=part.name).inc()
            log.warning("part_restarting", part=part.name, restarts=health.restarts)

    async def run_while_led(self, part: Supervised, stopping: asyncio.Event) -> None:
        """Runs a trigger's source while this replica leads the trigger (`leadership`); once
        it stops, its health is forgotten, so that a follower's /readyz does not report a
        source it no longer runs."""
        try:
            await self.run(part, stopping)
        finally:
            self.health.pop(part.name, None)

    def record_failure(
        self, part: Supervised, health: PartHealth, error: str, ran_s: float
    ) -> float:
        """Marks the part restarting after a failure that came after `ran_s`; the delay."""
        health.failures_in_a_row = failures_in_a_row(health.failures_in_a_row, ran_s, self.policy)
        delay_s = restart_delay_s(health.failures_in_a_row, self.policy)
        now = self.now()
        health.state = "restarting"
        health.last_error = error
        health.last_failed_at = now
        health.restart_at = datetime.fromtimestamp(now.timestamp() + delay_s, UTC)
        _mark_trigger_failed(part, error)
        log.warning("part_restart_scheduled", part=part.name, delay_s=delay_s)
        return delay_s


def _mark_trigger_failed(part: Supervised, error: str) -> None:
    """A trigger's source shows `failed` in /api/triggers until it works again."""
    status = getattr(part, "status", None)
    if isinstance(status, TriggerStatus):
        status.restarting(error)


async def _stopped_within(stopping: asyncio.Event, delay_s: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), delay_s)
    return stopping.is_set()
