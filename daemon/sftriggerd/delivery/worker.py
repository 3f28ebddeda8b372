"""One endpoint's delivery loop: claim what is due, send it concurrently, record outcomes.

When to look for work: right after a notify (new deliveries committed), when a POST is
answered (its slot is free), when the answer's outcome is committed (the next change of its
record may now be due), or when the store says the earliest delivery comes due; never later
than `max_idle`, so deliveries whose lease another process let lapse are picked up.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import aiohttp
import structlog

from ..config.settings import EndpointSettings
from ..errors import StoreError
from ..logs import get_logger
from ..metrics import Metrics
from ..store.base import Store
from ..store.records import Claim, Dead, Delivered, Outcome, Retry
from .answers import Result
from .breaker import Breaker, BreakerPolicy, Transition
from .outcome import classify
from .sender import post_webhook
from .signing import webhook_headers

log = get_logger(__name__)

# How often to look again when a delivery is due but cannot be claimed: it waits behind an
# older change of its record (per-record ordering), and nothing announces when that clears
# unless this worker itself scheduled the older change's retry.
BLOCKED_POLL_S = 1.0


def default_lease(timeout: timedelta) -> timedelta:
    """Long enough for the POST twice over plus the outcome write; at least 30 s."""
    return max(timedelta(seconds=30), 2 * timeout + timedelta(seconds=5))


async def wait_any(events: Sequence[asyncio.Event], timeout_s: float) -> None:
    """Returns when any event is set or after `timeout_s`."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(
            waiters, timeout=max(timeout_s, 0.0), return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for waiter in waiters:
            waiter.cancel()


@dataclass(frozen=True)
class WorkerOptions:
    lease: timedelta | None
    clock: Callable[[], datetime]
    jitter: Callable[[], float]
    breaker: BreakerPolicy
    max_idle: timedelta
    on_outcome: Callable[[], None]


class EndpointWorker:
    def __init__(
        self,
        endpoint: EndpointSettings,
        store: Store,
        http: aiohttp.ClientSession,
        metrics: Metrics,
        options: WorkerOptions,
    ) -> None:
        self.endpoint = endpoint
        self.name = endpoint.name
        self.wake = asyncio.Event()
        self.breaker = Breaker(options.breaker, options.clock)
        self.lease = options.lease or default_lease(endpoint.timeout)
        if self.lease <= endpoint.timeout:
            # Every claim would lapse before its answer could come, and be given back forever.
            raise ValueError(f"endpoint {endpoint.name}: the lease must outlast the timeout")
        self._store = store
        self._http = http
        self._metrics = metrics
        self._options = options
        self._clock = options.clock
        self._key = endpoint.secret_key
        secret = endpoint.secret.get_secret_value()
        self._secrets = (secret, secret.removeprefix("whsec_"), *endpoint.headers.values())
        self._log = log.bind(endpoint=endpoint.name)
        # Claims sent or being sent whose outcome is not yet handed to the store.
        self._unfinished: dict[int, Claim] = {}
        self._sends: set[asyncio.Task[None]] = set()
        self._writes: set[asyncio.Task[bool]] = set()
        self._claimed_at: datetime | None = None
        self._retry_hints: list[datetime] = []

    async def run(self, stopping: asyncio.Event, grace: timedelta) -> None:
        """Delivers until `stopping`; then lets sends finish for `grace`, cancels the rest
        and gives their claims back, so another run sends them without a lost attempt."""
        try:
            async with asyncio.TaskGroup() as group:
                await self._claim_loop(stopping, group)
                await self._drain(grace)
        finally:
            await self._settle()

    async def _claim_loop(self, stopping: asyncio.Event, group: asyncio.TaskGroup) -> None:
        while not stopping.is_set():
            # Cleared before claiming, so a notify that lands mid-claim is not lost.
            self.wake.clear()
            await self._fill(stopping, group)
            if stopping.is_set():
                break
            await wait_any((stopping, self.wake), await self._idle_s())

    def _free_slots(self) -> int:
        """How many sends may start now: at most `max_in_flight` POSTs at a time, and as
        many answered ones at most waiting for their outcome's commit, so that a slow store
        holds claiming back."""
        limit, sends = self.endpoint.max_in_flight, len(self._sends)
        return min(limit - sends, 2 * limit - sends - len(self._writes))

    async def _fill(self, stopping: asyncio.Event, group: asyncio.TaskGroup) -> None:
        admission = self.breaker.admit(self._free_slots())
        if admission.count == 0:
            return
        if admission.probe:
            self._log.info("breaker_half_open")
        now = self._clock()
        try:
            claims = await self._store.claim_due(self.name, admission.count, self.lease, now)
        except StoreError as exc:
            claims = []
            self._log.warning("claim_failed", error=str(exc))
        self._claimed_at = now
        while self._retry_hints and self._retry_hints[0] <= now:
            heapq.heappop(self._retry_hints)
        if admission.probe and not claims:
            self.breaker.cancel_probe()
        if stopping.is_set():
            await self._release(claims)
            return
        for claim in claims:
            self._unfinished[claim.delivery_id] = claim
            task = group.create_task(self._deliver(claim, admission.probe))
            self._sends.add(task)
            task.add_done_callback(self._send_done)

    def _send_done(self, task: asyncio.Task[None]) -> None:
        self._sends.discard(task)
        self.wake.set()

    async def _idle_s(self) -> float:
        """How long to sleep when nothing announces work."""
        max_idle_s = self._options.max_idle.total_seconds()
        now = self._clock()
        half_open_at = self.breaker.half_open_at()
        if half_open_at is not None:
            return min((half_open_at - now).total_seconds(), max_idle_s)
        if self._free_slots() <= 0 or self.breaker.probing:
            return max_idle_s  # an answer or a committed outcome wakes the loop
        try:
            due = await self._store.next_due_at(self.name)
        except StoreError as exc:
            self._log.warning("next_due_failed", error=str(exc))
            return BLOCKED_POLL_S
        if due is None:
            return max_idle_s
        if self._claimed_at is None or due > self._claimed_at:
            # Came due after the last claim looked, or lies ahead: claim again then.
            return min(max((due - now).total_seconds(), 0.0), max_idle_s)
        # Due at the last claim but not claimed: blocked behind an older change.
        if self._retry_hints:
            next_hint_s = (self._retry_hints[0] - now).total_seconds()
            return min(max(next_hint_s, 0.0), BLOCKED_POLL_S)
        return BLOCKED_POLL_S

    async def _deliver(self, claim: Claim, probe: bool) -> None:
        bound = self._log.bind(event_id=claim.event_id, delivery_id=claim.delivery_id)
        now = self._clock()
        if now + self.endpoint.timeout >= claim.lease_until:
            # The answer could come after the lease ran out, when another process may hold
            # the delivery; give it back instead of risking a send nobody can record.
            bound.warning("claim_expired_before_send", lease_until=claim.lease_until.isoformat())
            if probe:
                self.breaker.cancel_probe()
            self._unfinished.pop(claim.delivery_id, None)
            await self._release([claim])
            return
        headers = webhook_headers(
            claim.event_id, int(now.timestamp()), claim.body, self._key, self.endpoint.headers
        )
        result = await post_webhook(
            self._http, self.endpoint.url, headers, claim.body, self.endpoint.timeout
        )
        done_at = self._clock()
        outcome = classify(
            result, claim, self.endpoint.retry, done_at, self._options.jitter(), self._secrets
        )
        self._account(claim, result, outcome, probe, bound)
        await self._record(claim, outcome, bound)

    async def _record(
        self, claim: Claim, outcome: Outcome, bound: structlog.stdlib.BoundLogger
    ) -> None:
        # From here the outcome write owns the claim: it is never released, even at shutdown.
        self._unfinished.pop(claim.delivery_id, None)
        write = asyncio.ensure_future(self._store.record_outcome(claim, outcome))
        self._writes.add(write)
        write.add_done_callback(partial(self._write_done, bound))
        self._free_slot()
        # Shielded: a shutdown that cancels this send must not cancel the write of its
        # outcome, or a 2xx that arrived would be sent again.
        with contextlib.suppress(StoreError):  # logged by _write_done
            await asyncio.shield(write)
        self._options.on_outcome()

    def _free_slot(self) -> None:
        """The calling send's POST is answered: its slot takes the next claim now, without
        waiting for the outcome's commit (until then the store keeps the delivery in flight,
        so nothing claims it again). The send's task ends after the commit, as before."""
        task = asyncio.current_task()
        if task is not None:
            self._sends.discard(task)
        self.wake.set()

    def _write_done(self, bound: structlog.stdlib.BoundLogger, write: asyncio.Task[bool]) -> None:
        self._writes.discard(write)
        if write.cancelled():
            return
        error = write.exception()
        if error is not None:
            # The lease runs out and the delivery is sent again: a duplicate, never a loss.
            bound.error("outcome_not_recorded", error=str(error))
        elif not write.result():
            bound.warning("delivery_lease_lost")

    def _account(
        self,
        claim: Claim,
        result: Result,
        outcome: Outcome,
        probe: bool,
        bound: structlog.stdlib.BoundLogger,
    ) -> None:
        """Metrics, breaker and logs for one attempt."""
        metrics, name, attempt = self._metrics, self.name, claim.attempts + 1
        metrics.delivery_attempt_seconds.labels(endpoint=name).observe(result.duration_s)
        transition: Transition | None
        if isinstance(outcome, Delivered):
            metrics.deliveries.labels(endpoint=name, outcome="delivered").inc()
            age_s = (outcome.at - claim.occurred_at).total_seconds()
            metrics.end_to_end_seconds.labels(endpoint=name).observe(max(age_s, 0.0))
            transition = self.breaker.record_success()
            bound.debug("delivery_succeeded", status=outcome.status, attempt=attempt)
        elif isinstance(outcome, Retry):
            metrics.deliveries.labels(endpoint=name, outcome="retry").inc()
            heapq.heappush(self._retry_hints, outcome.next_attempt_at)
            transition = self.breaker.record_failure(probe)
            bound.warning(
                "delivery_failed",
                status=outcome.status,
                error=outcome.error,
                attempt=attempt,
                next_attempt_at=outcome.next_attempt_at.isoformat(),
            )
        else:
            assert isinstance(outcome, Dead)
            metrics.deliveries.labels(endpoint=name, outcome="dead").inc()
            transition = self.breaker.record_failure(probe)
            bound.error(
                "delivery_dead", status=outcome.status, error=outcome.error, attempt=attempt
            )
        self._log_transition(transition)

    def _log_transition(self, transition: Transition | None) -> None:
        if transition is None:
            return
        snapshot = self.breaker.snapshot()
        if transition == "closed":
            self._log.info("breaker_closed")
            return
        self._log.warning(
            "breaker_opened" if transition == "opened" else "breaker_reopened",
            consecutive_failures=snapshot.consecutive_failures,
            cooldown_s=snapshot.cooldown.total_seconds(),
        )

    async def _drain(self, grace: timedelta) -> None:
        if self._sends:
            self._log.info("delivery_draining", in_flight=len(self._sends))
            _, unfinished = await asyncio.wait(set(self._sends), timeout=grace.total_seconds())
            for task in unfinished:
                task.cancel()

    async def _settle(self) -> None:
        """After the sends: wait for outcome writes, then give back what was never sent."""
        if self._writes:
            await asyncio.wait(set(self._writes))
        unfinished = list(self._unfinished.values())
        self._unfinished.clear()
        await self._release(unfinished)

    async def _release(self, claims: Sequence[Claim]) -> None:
        if not claims:
            return
        try:
            await self._store.release(claims, self._clock())
        except StoreError as exc:
            # Their leases run out and they come due again; only the wait is longer.
            self._log.error("claims_not_released", count=len(claims), error=str(exc))
            return
        self._log.info("claims_released", count=len(claims))
