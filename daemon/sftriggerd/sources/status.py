"""What a trigger's source is doing, for /readyz, /api/triggers, the status page and metrics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from ..events.streamed import TransportName
from ..logs import redactor

Mode = Literal["streaming", "polling"]
State = Literal["starting", "running", "failed"]


@dataclass
class TriggerStatus:
    """Read by many, changed only through the methods below, each named for what happened
    (so every source reports the same event the same way)."""

    name: str
    mode: Mode
    mode_reason: str
    state: State = "starting"
    checkpoint: str | None = None
    # Everything that happened before this moment has been read (for lag).
    caught_up_to: datetime | None = None
    last_error: str | None = None
    last_success_at: datetime | None = None
    connected: bool = False
    # The transport a streamed trigger subscribes over (also while `mode: auto` polls);
    # None for a polling trigger.
    transport: TransportName | None = None

    # -- what happened --------------------------------------------------------------------

    def subscribed(self, now: datetime) -> None:
        """The stream is subscribed: running, and nothing is pending as of now."""
        self.connected = True
        self.state = "running"
        self.caught_up_to = now

    def disconnected(self) -> None:
        self.connected = False

    def fault(self, error: str, *, failed: bool = False) -> None:
        """A fault the source recovers from on its own (`failed`: one that needs the
        operator, such as an unavailable channel or a refused login, until it clears)."""
        self.last_error = error
        if failed:
            self.state = "failed"

    def advanced(self, checkpoint: str | None, now: datetime) -> None:
        """Everything before `now` is read; `checkpoint` (when given) is the new position."""
        if checkpoint is not None:
            self.checkpoint = checkpoint
        self.caught_up_to = now

    def polled(self, checkpoint: str, upper: datetime, now: datetime) -> None:
        """A poll succeeded: it read everything before `upper`."""
        self.state = "running"
        self.last_error = None
        self.last_success_at = now
        self.caught_up_to = upper
        self.checkpoint = checkpoint

    def positioned(self, checkpoint: str) -> None:
        """The source loaded its position."""
        self.checkpoint = checkpoint

    def restarting(self, error: str | None = None) -> None:
        """The source is (re)built: its old position's text is no longer true. With an
        `error`: it died of it and is restarted by the supervisor."""
        if error is None:
            self.checkpoint = None
            self.state = "starting"
            return
        self.state = "failed"
        self.last_error = f"restarting after: {error}"
        self.connected = False

    def switched(self, mode: Mode, reason: str) -> None:
        self.mode = mode
        self.mode_reason = reason

    # -- what it shows ---------------------------------------------------------------------

    def lag_s(self, now: datetime | None = None) -> float | None:
        if self.caught_up_to is None:
            return None
        return max(0.0, ((now or datetime.now(UTC)) - self.caught_up_to).total_seconds())

    def as_json(self) -> dict[str, Any]:
        lag = self.lag_s()
        return {
            "name": self.name,
            "mode": self.mode,
            "mode_reason": self.mode_reason,
            "transport": self.transport,
            "state": self.state,
            "checkpoint": self.checkpoint,
            "lag_s": None if lag is None else round(lag, 3),
            # Shown without a secret: a proxy error's URL must not carry its password, nor a
            # peer's error the access token it quotes from the request (as the logs scrub it).
            "last_error": None if self.last_error is None else redactor.scrub(self.last_error),
        }
