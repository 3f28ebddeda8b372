"""What the status page shows, gathered in one read: outbox counts, breakers, recent
failures, trigger states and the delivery rate. Rendering is `status_page`'s job."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from time import monotonic
from typing import Any

from ..delivery.breaker import BreakerSnapshot
from ..errors import StoreError
from ..lag_history import LagMinutes
from ..metrics import Metrics
from ..store.activity import RecentActivity
from ..store.base import Store
from ..store.records import DeliveryRow, DeliveryStatus, OutboxCounts, PoisonEvent
from ..supervision import PartHealth
from .activity_view import ActivityReader
from .replicas import ReplicaView, replica_views
from .state import AdminState

_FAILURES_SHOWN = 50
# Retrying deliveries are found among the newest pending and in-flight rows; a huge backlog
# can hide older ones, which the endpoint counts still include.
_RETRYING_SCANNED = 200
_RATE_WINDOW_S = 300.0
_POISON_SHOWN = 20


class DeliveryRate:
    """Delivered per minute per endpoint, from this process's `deliveries` counter.

    The store cannot answer this: a delivery row keeps when it was created, not when it was
    delivered, and delivered rows are pruned. The counter is exact and free, at the price of
    counting this process only. Samples are taken when the page is read, so the rate covers
    the last five minutes when someone keeps the page open, else the time since the last read.
    """

    def __init__(self, window_s: float = _RATE_WINDOW_S) -> None:
        self._window_s = window_s
        self._samples: deque[tuple[float, dict[str, float]]] = deque(maxlen=1000)

    def observe(self, at_s: float, totals: dict[str, float]) -> tuple[dict[str, float], float]:
        """Records the counter totals; returns per-minute rates and the seconds they cover."""
        if not self._samples or at_s - self._samples[-1][0] >= 1.0:
            self._samples.append((at_s, totals))
        # Keep one sample at or beyond the window's start, as the base of the difference.
        while len(self._samples) >= 2 and self._samples[1][0] <= at_s - self._window_s:
            self._samples.popleft()
        base_s, base = self._samples[0]
        span_s = at_s - base_s
        if span_s < 1.0:
            return {}, 0.0
        rates = {
            name: max(0.0, total - base.get(name, 0.0)) * 60.0 / span_s
            for name, total in totals.items()
        }
        return rates, span_s


def delivered_totals(metrics: Metrics) -> dict[str, float]:
    totals: dict[str, float] = {}
    for family in metrics.deliveries.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels.get("outcome") == "delivered":
                totals[sample.labels["endpoint"]] = sample.value
    return totals


@dataclass(frozen=True)
class EndpointView:
    name: str
    configured: bool
    counts: OutboxCounts
    breaker: BreakerSnapshot | None
    last_failure: DeliveryRow | None
    rate_per_min: float | None


@dataclass(frozen=True)
class StatusView:
    now: datetime
    not_ready: list[str]
    store_problem: str | None
    triggers: list[dict[str, Any]]
    # Streaming triggers only: whether the subscription is up (None: not reported yet).
    connected: dict[str, bool | None]
    endpoints: list[EndpointView]
    failures: list[DeliveryRow]
    rate_span_s: float
    token_required: bool
    # Newest first; the whole list is GET /api/poison.
    poison: list[PoisonEvent] = field(default_factory=list)
    # Parts that are restarting or have been restarted by this process.
    troubled_parts: list[PartHealth] = field(default_factory=list)
    # The replicas sharing the store, and what each leads.
    replicas: list[ReplicaView] = field(default_factory=list)
    # The last hour's finished deliveries (None: the store could not be read).
    activity: RecentActivity | None = None
    # Each trigger's lag over the last hour, and since when this process keeps it (None:
    # it keeps none).
    lag: dict[str, LagMinutes] = field(default_factory=dict)
    lag_kept_since: datetime | None = None


async def _failures(store: Store) -> list[DeliveryRow]:
    rows = await store.list_deliveries(status="dead", limit=_FAILURES_SHOWN)
    retrying: tuple[DeliveryStatus, ...] = ("pending", "in_flight")
    for status in retrying:
        scanned = await store.list_deliveries(status=status, limit=_RETRYING_SCANNED)
        rows.extend(row for row in scanned if row.last_error)
    return sorted(rows, key=lambda row: row.id, reverse=True)


async def gather_status(
    state: AdminState, rate: DeliveryRate, activity_reader: ActivityReader | None = None
) -> StatusView:
    """Reads everything the page shows; a store that fails is shown, not raised."""
    counts: dict[str, OutboxCounts] = {}
    failures: list[DeliveryRow] = []
    poison: list[PoisonEvent] = []
    replicas: list[ReplicaView] = []
    activity: RecentActivity | None = None
    store_problem = "the store is not open" if state.store is None else None
    if state.store is not None:
        try:
            counts = await state.store.outbox_counts()
            failures = await _failures(state.store)
            poison = await state.store.list_poison(limit=_POISON_SHOWN)
            replicas = await replica_views(state.store, state)
            reader = activity_reader or ActivityReader()
            activity = await reader.read(state.store, monotonic())
        except StoreError as exc:
            store_problem = f"the store is not reachable: {exc}"
    triggers = state.trigger_status() if state.trigger_status is not None else []
    connected: dict[str, bool | None] = {}
    for trigger in triggers:
        if trigger.get("mode") == "streaming":
            value = state.metrics.registry.get_sample_value(
                "sftriggerd_stream_connected", {"trigger": str(trigger.get("name"))}
            )
            connected[str(trigger.get("name"))] = None if value is None else value == 1
    lag: dict[str, LagMinutes] = {}
    lag_kept_since: datetime | None = None
    if state.lag_history is not None:
        names = [str(trigger.get("name")) for trigger in triggers]
        lag = {name: state.lag_history.last_hour(name) for name in names}
        lag_kept_since = datetime.fromtimestamp(state.lag_history.started_s, UTC)
    breakers = dict(state.breakers()) if state.breakers is not None else {}
    rates, span_s = rate.observe(monotonic(), delivered_totals(state.metrics))
    configured = [endpoint.name for endpoint in state.settings.endpoints]
    leftover = sorted(set(counts) - set(configured))
    endpoints = [
        EndpointView(
            name=name,
            configured=name in configured,
            counts=counts.get(name, OutboxCounts(pending=0, dead=0)),
            breaker=breakers.get(name),
            last_failure=next((row for row in failures if row.endpoint == name), None),
            rate_per_min=rates.get(name, 0.0) if span_s else None,
        )
        for name in [*configured, *leftover]
    ]
    return StatusView(
        now=datetime.now(UTC),
        not_ready=[reason for check in state.readiness for reason in check()],
        store_problem=store_problem,
        triggers=triggers,
        connected=connected,
        endpoints=endpoints,
        failures=failures[:_FAILURES_SHOWN],
        rate_span_s=span_s,
        token_required=state.settings.server.admin_token is not None,
        poison=poison,
        replicas=replicas,
        activity=activity,
        lag=lag,
        lag_kept_since=lag_kept_since,
        troubled_parts=[
            part
            for part in (state.part_health() if state.part_health is not None else [])
            if part.state != "running" or part.restarts
        ],
    )
