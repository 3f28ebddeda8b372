"""Assembles the running daemon from settings: store, Salesforce client, sources, dispatcher,
admin; then runs it until `stopping`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import aiohttp

from . import tracing
from .admin.state import AdminState
from .app import App, Part
from .config import Settings
from .config.settings import TriggerSettings
from .delivery.dispatcher import Dispatcher, build_dispatcher
from .ingest import Ingest
from .lag_history import LagHistory
from .leadership import Leadership, Timing
from .logs import get_logger
from .metrics import Metrics
from .pruner import Pruner
from .salesforce.client import SalesforceClient
from .salesforce.pubsub.client import PubSubClient
from .sources.auto import AutoSource
from .sources.cometd_hub import CometdHub
from .sources.context import SourceContext
from .sources.plan import Plan, plan_source
from .sources.polling import PollingSource
from .sources.reporter import StatusReporter
from .sources.restartable import RestartableSource
from .sources.status import Mode, TriggerStatus
from .sources.streaming import StreamingSource
from .store import store_from_settings
from .store.base import Store
from .supervision import RestartPolicy

# Builds the delivery part and returns it with its "new work" callback.
# (Each endpoint's HTTP connections are its own: the dispatcher makes their pools.)
DispatcherFactory = Callable[
    [Store, Settings, Metrics], tuple[Part, Callable[[Iterable[str]], None]]
]

log = get_logger(__name__)


def build_sources(
    settings: Settings,
    client: SalesforceClient,
    ingest: Ingest,
    store: Store,
    metrics: Metrics,
    pubsub: PubSubClient | None = None,
    cometd: CometdHub | None = None,
) -> tuple[list[Part], list[TriggerStatus]]:
    """A source per trigger; a streamed one over its resolved transport (Pub/Sub ones over
    `pubsub`, which `pubsub_client` makes when any trigger needs it; CometD ones over one
    shared Bayeux client, `cometd`, made here when not given)."""
    parts: list[Part] = []
    statuses: list[TriggerStatus] = []
    context = SourceContext(
        client=client,
        ingest=ingest,
        store=store,
        metrics=metrics,
        pubsub=pubsub,
        cometd=cometd or CometdHub(client),
    )
    for trigger in settings.triggers:
        plan = plan_source(trigger)
        mode: Mode = "polling" if plan.plan == "polling" else "streaming"
        status = TriggerStatus(name=trigger.name, mode=mode, mode_reason=plan.reason)
        if plan.plan != "polling":
            status.transport = trigger.resolved_transport
        statuses.append(status)
        # Rebuilt from the settings when a rewind restarts it (`restartable`).
        build = partial(_source, trigger, plan.plan, context, status)
        parts.append(RestartableSource(trigger.name, build))
    return parts, statuses


def pubsub_client(settings: Settings, client: SalesforceClient) -> PubSubClient | None:
    """The daemon's one Pub/Sub client (one gRPC channel for every trigger), when a streamed
    trigger uses the Pub/Sub API; it connects on first use."""
    if not any(
        plan_source(trigger).plan != "polling" and trigger.resolved_transport == "pubsub"
        for trigger in settings.triggers
    ):
        return None
    salesforce = settings.salesforce
    warning = salesforce.pubsub_plaintext_warning
    if warning is not None:
        log.warning("pubsub_plaintext", why=warning)
    return PubSubClient(client.session, salesforce.pubsub_url)


def _source(
    trigger: TriggerSettings, plan: Plan, context: SourceContext, status: TriggerStatus
) -> Part:
    if plan == "polling":
        return PollingSource(trigger, context, status)
    streaming = StreamingSource(trigger, context, status)
    if plan == "streaming":
        return streaming
    return AutoSource(streaming, PollingSource(trigger, context, status), status)


# The name of the one process a SQLite store has: the same after every restart, so that a
# process started after a crash takes its predecessor's leases over at once (with the next
# epoch) instead of waiting for them to run out. One process owns the file, so nothing
# else can hold them.
SQLITE_REPLICA = "local"


def replica_name(settings: Settings) -> str:
    if settings.store.engine == "sqlite":
        return SQLITE_REPLICA
    return settings.ha.resolved_replica_name


def led_status(status: TriggerStatus, leadership: Leadership) -> dict[str, Any]:
    """A trigger's status for /api/triggers and the status page, with who leads it; on a
    replica that does not, the source stands by (its last state here is not current)."""
    shown = {**status.as_json(), "leader": leadership.leader_of(status.name)}
    if not leadership.leads(status.name):
        shown.update(state="standby", checkpoint=None, lag_s=None, last_error=None)
    return shown


async def run_daemon(
    settings: Settings,
    stopping: asyncio.Event,
    dispatcher_factory: DispatcherFactory | None = build_dispatcher,
    restart_policy: RestartPolicy | None = None,
    traces: tracing.Tracing | None = None,
) -> None:
    """Opens the store (migrating it), runs every part until `stopping`, closes the store.
    `traces`: where every part reports its spans while it runs (None: tracing off)."""
    traces = traces or tracing.Tracing()
    tracing.use(traces)
    try:
        await _run_parts(settings, stopping, dispatcher_factory, restart_policy)
    finally:
        tracing.use(tracing.Tracing())
        await traces.close()


async def _run_parts(
    settings: Settings,
    stopping: asyncio.Event,
    dispatcher_factory: DispatcherFactory | None,
    restart_policy: RestartPolicy | None,
) -> None:
    metrics = Metrics()
    if settings.ha.tight:
        log.warning(
            "ha_takeover_tight",
            takeover_s=settings.ha.takeover.total_seconds(),
            why="below 6s a slow database round or a loaded machine stops healthy sources"
            " (they restart; nothing is written twice); meant for tests and drills",
        )
    for trigger in settings.triggers:  # from zero, so that the alert sees the first poison
        metrics.poison_events.labels(trigger=trigger.name)
    store = store_from_settings(settings.store)
    await store.open()
    try:
        async with aiohttp.ClientSession() as salesforce_http:
            parts: list[Part] = [Pruner(store, settings.store.retention)]
            notify: Callable[[Iterable[str]], None] = lambda names: None  # noqa: E731
            if dispatcher_factory is not None:
                dispatcher, notify = dispatcher_factory(store, settings, metrics)
                parts.append(dispatcher)
            client = SalesforceClient(settings.salesforce, salesforce_http, metrics)
            ingest = Ingest(store, settings.endpoints, metrics, notify=notify)
            pubsub = pubsub_client(settings, client)
            cometd = CometdHub(client)  # connects when a CometD trigger first subscribes
            sources, statuses = build_sources(
                settings, client, ingest, store, metrics, pubsub, cometd
            )
            app = App(settings=settings, metrics=metrics, store=store)
            app.supervisor.policy = restart_policy or RestartPolicy()
            restartable = {s.trigger: s for s in sources if isinstance(s, RestartableSource)}
            # Each source runs only while this replica holds its trigger's lease, and its
            # writes carry that lease as a fence. (One source per trigger, in their order.)
            led = dict(zip((t.name for t in settings.triggers), sources, strict=True))
            leadership = Leadership(
                store,
                replica_name(settings),
                led,
                Timing(settings.ha.takeover, settings.ha.resolved_renew_every),
                metrics,
                run_source=app.supervisor.run_while_led,
            )
            ingest.fence_for = leadership.fence_for
            for part in parts:  # hand-overs heard on the dispatcher's LISTEN connection
                if isinstance(part, Dispatcher) and part.listener is not None:
                    part.listener.on_lease_released = leadership.lease_released
            # The status page's lag charts: the reporter's samples, kept in memory.
            lag_history = LagHistory()
            reporter = StatusReporter(
                statuses, metrics, leads=leadership.leads, history=lag_history
            )
            app.parts = [leadership, *parts, reporter]
            app.admin = AdminState(
                settings=settings,
                metrics=metrics,
                store=store,
                on_redrive=lambda endpoint: notify([endpoint]),
                trigger_status=lambda: [led_status(status, leadership) for status in statuses],
                breakers=next((p.breakers for p in parts if isinstance(p, Dispatcher)), None),
                sources=restartable,
                replica=leadership.replica,
                leads=leadership.leads,
                fence_for=leadership.fence_for,
                lag_history=lag_history,
            )
            try:
                await app.run(stopping)
            finally:
                await cometd.close()
                if pubsub is not None:
                    await pubsub.close()
    finally:
        await store.close()
