"""What a trigger's source is doing, for /readyz, /api/triggers, the status page and metrics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from ..urls import strip_userinfo

Mode = Literal["streaming", "polling"]
State = Literal["starting", "running", "failed"]


@dataclass
class TriggerStatus:
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
            "state": self.state,
            "checkpoint": self.checkpoint,
            "lag_s": None if lag is None else round(lag, 3),
            # Shown without a token: a proxy error's URL must not carry its password.
            "last_error": None if self.last_error is None else strip_userinfo(self.last_error),
        }
