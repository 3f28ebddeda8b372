"""What the admin server reads: handed over by the app, never reaching back into it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from aiohttp import web

from ..config.settings import Settings
from ..delivery.breaker import BreakerSnapshot
from ..lag_history import LagHistory
from ..metrics import Metrics
from ..store.base import Store
from ..store.leadership import Fence
from ..supervision import PartHealth

T = TypeVar("T")


class RestartsSource(Protocol):
    async def restart(self, work: Callable[[], Awaitable[T]]) -> T:
        """Stops the trigger's source, runs `work`, starts it afresh (a rewind)."""
        ...


# Returns the reasons a part is not ready; an empty list means ready.
ReadinessCheck = Callable[[], list[str]]


@dataclass
class AdminState:
    settings: Settings
    metrics: Metrics
    store: Store | None = None
    readiness: list[ReadinessCheck] = field(default_factory=list)
    # Called after a redrive so the dispatcher sends at once instead of at its next wake-up.
    on_redrive: Callable[[str], None] | None = None
    # Per-trigger status objects for /api/triggers (filled by the sources).
    trigger_status: Callable[[], list[dict[str, Any]]] | None = None
    # Each endpoint's circuit breaker, for the status page (set when this process delivers).
    breakers: Callable[[], Mapping[str, BreakerSnapshot]] | None = None
    # How each part fares under the supervisor (restarts, the last failure).
    part_health: Callable[[], list[PartHealth]] | None = None
    # Each running trigger's source by trigger name, for a rewind while running.
    sources: Mapping[str, RestartsSource] = field(default_factory=dict)
    # This replica's name (`ha.replica_name`), and the fence its writes for a trigger carry:
    # a rewind is refused on a replica that does not lead the trigger.
    replica: str | None = None
    leads: Callable[[str], bool] | None = None
    fence_for: Callable[[str], Fence] | None = None
    # Each led trigger's lag over the last hour, as the status reporter sampled it.
    lag_history: LagHistory | None = None


STATE_KEY = web.AppKey("admin_state", AdminState)
