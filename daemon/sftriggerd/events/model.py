"""The normalised event: what every source produces and every webhook carries."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Change = Literal["created", "updated", "deleted", "undeleted", "event"]


@dataclass(frozen=True)
class Event:
    """One record change (or one platform/generic event) for one trigger."""

    id: str
    trigger: str
    object: str | None
    change: Change
    record_id: str | None
    occurred_at: datetime
    source: dict[str, Any]
    changed_fields: tuple[str, ...] = ()
    record: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> str:
        """`account.updated`, `order_placed__e.event`."""
        return f"{(self.object or 'event').lower()}.{self.change}"


def event_id(*parts: object) -> str:
    """A stable id from what identifies a source change, so replays give the same id."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()
    return f"evt_{digest[:32]}"
