"""The delivery part: one worker per endpoint, woken by ingest (this replica's directly,
other replicas' through the store's wake-ups when it offers them), drained at shutdown.

Each endpoint gets its own loop, breaker and in-flight bound, so a slow or failing endpoint
never holds up another. The outbox gauges are read from the store (not counted in memory),
because other processes on the same PostgreSQL store deliver too.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta

from ..config.settings import EndpointSettings, Settings
from ..errors import StoreError
from ..logs import get_logger
from ..metrics import Metrics
from ..store.base import Store
from ..store.wake_ups import WakeUpSource, offered_wake_ups
from .breaker import BreakerPolicy, BreakerSnapshot
from .expiry import EXPIRE_BATCH, expiry_reason
from .wake_ups import WakeUpListener
from .worker import EndpointWorker, WorkerOptions, wait_any

log = get_logger(__name__)

# After a burst of outcomes, the gauges are refreshed at most this often.
_COUNTS_MIN_SPACING_S = 0.5
# ... and never more than this share of the time: the count reads every open delivery (70 ms
# at a million pending on SQLite, on the store's one thread), so a fixed spacing would take a
# growing share of the drain from a growing backlog.
_COUNTS_TIME_SHARE = 0.05


def counts_spacing_s(last_refresh_s: float, most_s: float) -> float:
    """How long to wait after a refresh that took `last_refresh_s` before the next: never
    more than `most_s` (the configured refresh interval), so a count that waited behind a
    stalled store (a held write lock, a locked table) does not leave the gauges stale for
    twenty times the stall."""
    return min(max(_COUNTS_MIN_SPACING_S, last_refresh_s / _COUNTS_TIME_SHARE), most_s)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Dispatcher:
    """The `Part` that sends webhooks; `notify` is ingest's "new work" callback."""

    name = "dispatcher"

    def __init__(
        self,
        store: Store,
        endpoints: Sequence[EndpointSettings],
        metrics: Metrics,
        *,
        shutdown_grace: timedelta = timedelta(seconds=20),
        lease: timedelta | None = None,
        clock: Callable[[], datetime] = _utc_now,
        jitter: Callable[[], float] = random.random,
        breaker: BreakerPolicy | None = None,
        max_idle: timedelta = timedelta(seconds=5),
        counts_interval: timedelta = timedelta(seconds=5),
        expiry_interval: timedelta = timedelta(seconds=30),
        wake_ups: WakeUpSource | None = None,
    ) -> None:
        """`lease` overrides the per-endpoint default (2 x timeout + 5 s, at least 30 s);
        `jitter` returns a float in [0, 1) (see backoff.jittered); `breaker` overrides every
        endpoint's own `breaker` settings; `max_idle` caps how long a worker sleeps without
        news, so leases other processes let lapse are noticed; every `expiry_interval`,
        deliveries past their endpoint's max_age go dead (see expiry); with `wake_ups`,
        other processes' commits wake the workers (see wake_ups)."""
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._expiry_interval = expiry_interval
        self._grace = shutdown_grace
        self._counts_interval = counts_interval
        self._counts_due = asyncio.Event()
        options = WorkerOptions(
            lease=lease,
            clock=clock,
            jitter=jitter,
            breaker=breaker,
            max_idle=max_idle,
            on_outcome=self._counts_due.set,
        )
        self._workers = {
            endpoint.name: EndpointWorker(endpoint, store, metrics, options)
            for endpoint in endpoints
        }
        self.listener = (
            WakeUpListener(wake_ups, list(self._workers), self.notify) if wake_ups else None
        )

    def notify(self, endpoint_names: Iterable[str]) -> None:
        """New deliveries for these endpoints are committed: look for them now."""
        for name in endpoint_names:
            worker = self._workers.get(name)
            if worker is not None:
                worker.wake.set()

    def not_ready_reasons(self) -> list[str]:
        # A dispatcher with an open breaker still takes traffic: deliveries queue in the
        # store. Store reachability is checked by the admin server.
        return []

    def breakers(self) -> dict[str, BreakerSnapshot]:
        """Each endpoint's circuit breaker, for the status page."""
        return {name: worker.breaker.snapshot() for name, worker in self._workers.items()}

    async def run(self, stopping: asyncio.Event) -> None:
        log.info("dispatcher_started", endpoints=list(self._workers))
        async with asyncio.TaskGroup() as group:
            for name, worker in self._workers.items():
                group.create_task(worker.run(stopping, self._grace), name=f"delivery:{name}")
            group.create_task(self._refresh_counts_loop(stopping), name="delivery:counts")
            group.create_task(self._expire_loop(stopping), name="delivery:expiry")
            if self.listener is not None:
                group.create_task(self.listener.run(stopping), name="delivery:wake-ups")
        await self._refresh_counts()
        log.info("dispatcher_stopped")

    async def _refresh_counts_loop(self, stopping: asyncio.Event) -> None:
        interval_s = self._counts_interval.total_seconds()
        while not stopping.is_set():
            self._counts_due.clear()
            started_s = time.monotonic()
            counted = await self._refresh_counts()
            # A failed count is tried again soon: the gauges show the last good one meanwhile.
            took_s = time.monotonic() - started_s if counted else 0.0
            spacing_s = counts_spacing_s(took_s, max(interval_s, _COUNTS_MIN_SPACING_S))
            # Outcomes arriving meanwhile are counted by the next refresh, one query a burst.
            await wait_any((stopping,), spacing_s)
            await wait_any((stopping, self._counts_due), max(0.0, interval_s - spacing_s))

    async def _expire_loop(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            for name in self._workers:
                await self.expire_overdue(name)
            await wait_any((stopping,), self._expiry_interval.total_seconds())

    async def expire_overdue(self, endpoint_name: str) -> int:
        """Makes the endpoint's deliveries past max_age dead, whatever its breaker does;
        returns how many (0 when the store fails: the next sweep tries again)."""
        worker = self._workers[endpoint_name]
        endpoint = worker.endpoint
        reason = expiry_reason(endpoint, worker.breaker.state)
        expired = 0
        while True:
            try:
                count = await self._store.expire_overdue(
                    endpoint.name, endpoint.retry.max_age, reason, EXPIRE_BATCH
                )
            except StoreError as exc:
                log.warning("expire_overdue_failed", endpoint=endpoint.name, error=str(exc))
                break
            expired += count
            if count < EXPIRE_BATCH:
                break
        if expired:
            self._metrics.deliveries.labels(endpoint=endpoint.name, outcome="dead").inc(expired)
            log.warning("deliveries_expired", endpoint=endpoint.name, count=expired, error=reason)
            self._counts_due.set()
            worker.wake.set()  # newer changes of their records may be claimable now
        return expired

    async def _refresh_counts(self) -> bool:
        """Sets the outbox gauges; False when the store could not count."""
        try:
            counts = await self._store.outbox_counts()
        except StoreError as exc:
            log.warning("outbox_counts_failed", error=str(exc))
            return False
        # An endpoint with nothing pending or dead has no row; it must read 0, not stale.
        for name in {*self._workers, *counts}:
            found = counts.get(name)
            self._metrics.outbox_pending.labels(endpoint=name).set(found.pending if found else 0)
            self._metrics.outbox_dead.labels(endpoint=name).set(found.dead if found else 0)
        return True


def build_dispatcher(
    store: Store, settings: Settings, metrics: Metrics
) -> tuple[Dispatcher, Callable[[Iterable[str]], None]]:
    """The dispatcher as the daemon builds it (matches `daemon.DispatcherFactory`). With
    `ha.wake_ups: poll` it never listens (behind PgBouncer in transaction mode a LISTEN
    hears nothing): other replicas' work is found by the workers' timed looks."""
    listens = settings.ha.wake_ups == "notify"
    dispatcher = Dispatcher(
        store,
        settings.endpoints,
        metrics,
        shutdown_grace=settings.server.shutdown_grace,
        wake_ups=offered_wake_ups(store) if listens else None,
    )
    return dispatcher, dispatcher.notify
