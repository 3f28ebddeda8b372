"""One endpoint's delivery loop: claim what is due, send it concurrently, record outcomes.

When to look for work: right after a notify (new deliveries committed), when answers have
freed a batch's worth of room, when outcomes are committed (the next change of their record
may now be due), or when the store says the earliest delivery comes due; never later than
`max_idle`, so deliveries whose lease another process let lapse are picked up.

Clocks. The store stamps and compares times on its own clock (a database server's, on
PostgreSQL), which may differ from this process's by seconds. So every *when* decided here is
a duration: what the store says is due in (`next_due_in`), a lease counted on this clock from
before its claim, a retry's delay; and the claim's `retry_since` (a store time) is moved onto
this clock by the skew each claim shows (`_store_ahead`) before max_age is counted from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import Sequence
from datetime import datetime, timedelta

import aiohttp

from .. import tracing
from ..config.settings import EndpointSettings
from ..errors import StoreError
from ..logs import get_logger
from ..metrics import Metrics
from ..store.base import Store
from ..store.records import Claim, Delivered, Outcome, Retry
from .answers import Failure, Result
from .breaker import Breaker, BreakerPolicy, Transition
from .outcome import classify, outcome_name, traced
from .sender import post_webhook
from .signing import Signer
from .worker_logs import log_outcome, log_transition
from .worker_parts import Meters, WorkerOptions, default_lease, endpoint_session, wait_any

__all__ = ["EndpointWorker", "WorkerOptions", "default_lease", "wait_any"]

log = get_logger(__name__)

# How often to look again when a delivery is due but cannot be claimed: it waits behind an
# older change of its record (per-record ordering), and nothing announces when that clears
# unless this worker itself scheduled the older change's retry.
BLOCKED_POLL_S = 1.0


class EndpointWorker:
    """Claims deliveries in batches into a queue that `max_in_flight` long-lived senders
    take from; their outcomes go to the store in batches by one writer. Nothing is created
    per delivery but the request itself, so the loop's time goes to HTTP."""

    def __init__(
        self,
        endpoint: EndpointSettings,
        store: Store,
        metrics: Metrics,
        options: WorkerOptions,
    ) -> None:
        self.endpoint = endpoint
        self.name = endpoint.name
        self.wake = asyncio.Event()
        policy = options.breaker or BreakerPolicy.from_settings(endpoint.breaker)
        self.breaker = Breaker(policy, options.clock)
        self.lease = options.lease or default_lease(endpoint.timeout)
        if self.lease <= endpoint.timeout:
            # Every claim would lapse before its answer could come, and be given back forever.
            raise ValueError(f"endpoint {endpoint.name}: the lease must outlast the timeout")
        self._store = store
        self._http: aiohttp.ClientSession | None = None  # the endpoint's own pool, in `run`
        self._options = options
        self._clock = options.clock
        self._signer = Signer(endpoint.secret_keys, endpoint.headers)
        # Every listed secret, with and without its prefix, is scrubbed from answer snippets.
        secrets = [secret.get_secret_value() for secret in endpoint.secret]
        self._secrets = (
            *secrets,
            *(secret.removeprefix("whsec_") for secret in secrets),
            *endpoint.headers.values(),
        )
        self._log = log.bind(endpoint=endpoint.name)
        self._meters = Meters(metrics, endpoint.name)
        limit = endpoint.max_in_flight
        # Claimed ahead up to one more round of sends, claimed in batches of at least a
        # quarter round: one claim transaction serves many deliveries.
        self._max_in_hand = 2 * limit
        self._max_unrecorded = 4 * limit
        self._claim_batch = max(1, limit // 4)
        # Claims leased to us whose outcome is not yet handed to the writer: given back at
        # shutdown. Queued ones wait for a sender; `None` tells a sender to stop.
        self._unfinished: dict[int, Claim] = {}
        self._queue: asyncio.Queue[Claim | None] = asyncio.Queue()
        self._sending = 0
        self._probe_id: int | None = None
        # Answered attempts on their way to the store, and the count in the current write.
        self._outcomes: list[tuple[Claim, Outcome]] = []
        self._writing = 0
        self._outcome_added = asyncio.Event()
        self._closing = False
        self._releases: set[asyncio.Task[None]] = set()
        self._claimed_at: datetime | None = None
        # When each claim's lease runs out by this worker's clock, counted from before the
        # claim (so never later than the store's own `lease_until`, whatever its clock).
        self._lease_ends: dict[int, datetime] = {}
        self._retry_hints: list[datetime] = []
        # How far the store's clock runs ahead of ours, as the last claim showed it: its
        # lease ends `lease` after the store's now. Measured from before the claim, so it
        # errs by the claim's round trip toward the store's clock being later.
        self._store_ahead = timedelta()

    async def run(self, stopping: asyncio.Event, grace: timedelta) -> None:
        """Delivers until `stopping`; then lets sends finish for `grace`, cancels the rest
        and gives their claims back, so another run sends them without a lost attempt."""
        try:
            async with endpoint_session(self.endpoint) as http, asyncio.TaskGroup() as group:
                self._http = http
                writer = group.create_task(self._write_loop())
                senders = [
                    group.create_task(self._send_loop()) for _ in range(self.endpoint.max_in_flight)
                ]
                group.create_task(self._wake_at(stopping))
                await self._claim_loop(stopping)
                await self._drain(senders, grace)
                self._closing = True
                self._outcome_added.set()
                await writer
        finally:
            await self._settle()

    async def _wake_at(self, stopping: asyncio.Event) -> None:
        await stopping.wait()
        self.wake.set()

    async def _claim_loop(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            # Cleared before claiming, so a notify that lands mid-claim is not lost.
            self.wake.clear()
            await self._fill(stopping)
            if stopping.is_set():
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(await self._idle_s()):
                    await self.wake.wait()

    def _room(self) -> int:
        """How many more claims to take now: at most `max_in_flight` POSTs are out and as
        many claims queued behind them, and a slow store (outcomes piling up unwritten)
        holds claiming back."""
        in_hand = self._queue.qsize() + self._sending
        unrecorded = len(self._outcomes) + self._writing
        return min(self._max_in_hand - in_hand, self._max_unrecorded - in_hand - unrecorded)

    def _worth_claiming(self) -> bool:
        """A batch's worth of room, or nothing in hand at all."""
        room = self._room()
        idle = self._sending == 0 and self._queue.empty()
        return room >= self._claim_batch or (room > 0 and idle)

    async def _fill(self, stopping: asyncio.Event) -> None:
        if not self._worth_claiming():
            return
        admission = self.breaker.admit(self._room())
        if admission.count == 0:
            return
        if admission.probe:
            self._log.info("breaker_half_open")
        now = self._clock()
        try:
            claims = await self._store.claim_due(self.name, admission.count, self.lease)
        except StoreError as exc:
            claims = []
            self._log.warning("claim_failed", error=str(exc))
        self._claimed_at = now
        while self._retry_hints and self._retry_hints[0] <= now:
            heapq.heappop(self._retry_hints)
        if admission.probe:
            if claims:
                self._probe_id = claims[0].delivery_id
            else:
                self.breaker.cancel_probe()
        if claims:
            self._store_ahead = claims[0].lease_until - self.lease - now
        for claim in claims:
            self._unfinished[claim.delivery_id] = claim
            self._lease_ends[claim.delivery_id] = now + self.lease
        if stopping.is_set():
            return  # given back by _settle
        for claim in claims:
            self._queue.put_nowait(claim)

    async def _idle_s(self) -> float:
        """How long to sleep when nothing announces work."""
        max_idle_s = self._options.max_idle.total_seconds()
        now = self._clock()
        half_open_at = self.breaker.half_open_at()
        if half_open_at is not None:
            return max(min((half_open_at - now).total_seconds(), max_idle_s), 0.0)
        if not self._worth_claiming() or self.breaker.probing:
            return max_idle_s  # an answer or a committed outcome wakes the loop
        try:
            due_in = await self._store.next_due_in(self.name)
        except StoreError as exc:
            self._log.warning("next_due_failed", error=str(exc))
            return BLOCKED_POLL_S
        if due_in is None:
            return max_idle_s
        due = now + due_in
        if self._claimed_at is None or due > self._claimed_at:
            # Came due after the last claim looked, or lies ahead: claim again then.
            return min(max((due - now).total_seconds(), 0.0), max_idle_s)
        # Due at the last claim but not claimed: blocked behind an older change.
        if self._retry_hints:
            next_hint_s = (self._retry_hints[0] - now).total_seconds()
            return min(max(next_hint_s, 0.0), BLOCKED_POLL_S)
        return BLOCKED_POLL_S

    async def _send_loop(self) -> None:
        while (claim := await self._queue.get()) is not None:
            self._sending += 1
            try:
                await self._deliver(claim)
            finally:
                self._sending -= 1
                if self._worth_claiming():
                    self.wake.set()

    async def _deliver(self, claim: Claim) -> None:
        probe = claim.delivery_id == self._probe_id
        # Its lease's end on this clock: set at its claim (the store's `lease_until` is on
        # the store's clock, never compared with ours unmoved).
        lease_end = self._lease_ends.pop(claim.delivery_id, claim.lease_until - self._store_ahead)
        if probe:
            self._probe_id = None
        elif not self.breaker.closed:
            # Claimed before the breaker opened: back to the store unsent.
            self._give_back([claim])
            return
        now = self._clock()
        if now + self.endpoint.timeout >= lease_end:
            # The answer could come after the lease ran out, when another process may hold
            # the delivery; give it back instead of risking a send nobody can record.
            self._log.warning(
                "claim_expired_before_send",
                event_id=claim.event_id,
                delivery_id=claim.delivery_id,
                lease_until=lease_end.isoformat(),
            )
            if probe:
                self.breaker.cancel_probe()
            self._unfinished.pop(claim.delivery_id, None)
            await self._release([claim])
            return
        headers = self._signer.headers(claim.event_id, int(now.timestamp()), claim.body)
        assert self._http is not None, "senders run inside run()"
        with tracing.active().attempt_span(claim, self.endpoint.name, self.endpoint.url) as span:
            span.add_headers(headers)  # `traceparent`, when tracing is on
            result = await post_webhook(
                self._http, self.endpoint.url, headers, claim.body, self.endpoint.timeout
            )
            done_at = self._clock()
            outcome = traced(
                classify(
                    result,
                    claim,
                    self.endpoint.retry,
                    done_at,
                    self._options.jitter(),
                    self._secrets,
                    self._store_ahead,
                ),
                result,
                now + self._store_ahead,  # kept beside the store's own times in the history
                self._secrets,
            )
            span.answered(result, outcome_name(outcome))
        # From here the writer owns the claim: it is never released, even at shutdown.
        self._unfinished.pop(claim.delivery_id, None)
        self._outcomes.append((claim, outcome))
        self._outcome_added.set()
        self._account(claim, result, outcome, probe, done_at)

    async def _write_loop(self) -> None:
        """Hands answered outcomes to the store, as many per transaction as have gathered
        while the previous one committed. Ends once closing and nothing is left."""
        while True:
            if not self._outcomes:
                if self._closing:
                    return
                self._outcome_added.clear()
                await self._outcome_added.wait()
                continue
            batch, self._outcomes = self._outcomes, []
            self._writing = len(batch)
            try:
                recorded = await self._store.record_outcomes(batch)
            except StoreError as exc:
                # Their leases run out and they are sent again: duplicates, never a loss.
                for claim, _ in batch:
                    self._log.error(
                        "outcome_not_recorded",
                        event_id=claim.event_id,
                        delivery_id=claim.delivery_id,
                        error=str(exc),
                    )
            else:
                for (claim, _), kept_lease in zip(batch, recorded, strict=True):
                    if not kept_lease:
                        self._log.warning(
                            "delivery_lease_lost",
                            event_id=claim.event_id,
                            delivery_id=claim.delivery_id,
                        )
            finally:
                self._writing = 0
            # The next change of these records may be due now, and the room is back; a
            # claim that could not take a batch would only wake the loop for nothing.
            if self._worth_claiming():
                self.wake.set()
            self._options.on_outcome()

    def _account(
        self, claim: Claim, result: Result, outcome: Outcome, probe: bool, done_at: datetime
    ) -> None:
        """Metrics, breaker and logs for one attempt, answered at `done_at`."""
        meters = self._meters
        meters.attempt_seconds.observe(result.duration_s)
        if isinstance(result, Failure):
            meters.failures[result.kind].inc()
        transition: Transition | None
        next_attempt_at: datetime | None = None
        if isinstance(outcome, Delivered):
            meters.delivered.inc()
            age_s = (done_at - claim.occurred_at).total_seconds()
            meters.end_to_end_seconds.observe(max(age_s, 0.0))
            transition = self.breaker.record_success()
        elif isinstance(outcome, Retry):
            meters.retried.inc()
            next_attempt_at = done_at + outcome.delay
            heapq.heappush(self._retry_hints, next_attempt_at)
            transition = self.breaker.record_failure(probe)
        else:
            meters.dead.inc()
            transition = self.breaker.record_failure(probe)
        log_outcome(self._log, claim, outcome, next_attempt_at)
        if transition in ("opened", "reopened"):
            self._give_back_queued()
        meters.breaker_changed(transition)
        log_transition(self._log, self.breaker, transition)

    def _give_back_queued(self) -> None:
        """The breaker opened: claims waiting for a sender go back to the store unsent."""
        queued: list[Claim] = []
        stops = 0
        while not self._queue.empty():
            claim = self._queue.get_nowait()
            if claim is None:
                stops += 1
            else:
                queued.append(claim)
        for _ in range(stops):  # during shutdown, each sender still needs its stop
            self._queue.put_nowait(None)
        self._give_back(queued)

    def _give_back(self, claims: Sequence[Claim]) -> None:
        """Releases unsent claims in the background (awaited by _settle)."""
        if not claims:
            return
        for claim in claims:
            self._unfinished.pop(claim.delivery_id, None)
            self._lease_ends.pop(claim.delivery_id, None)
        task = asyncio.create_task(self._release(claims))
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def _drain(self, senders: Sequence[asyncio.Task[None]], grace: timedelta) -> None:
        """No new sends: queued claims stay unsent (given back by _settle); sends under
        way get `grace` to finish and are cancelled after it."""
        while not self._queue.empty():
            self._queue.get_nowait()
        for _ in senders:
            self._queue.put_nowait(None)
        if self._sending:
            self._log.info("delivery_draining", in_flight=self._sending)
        _, unfinished = await asyncio.wait(senders, timeout=grace.total_seconds())
        for task in unfinished:
            task.cancel()
        if unfinished:
            await asyncio.wait(unfinished)

    async def _settle(self) -> None:
        """After the sends and the writer: give back what was never sent or never answered."""
        if self._releases:
            await asyncio.wait(set(self._releases))
        unfinished = list(self._unfinished.values())
        self._unfinished.clear()
        await self._release(unfinished)

    async def _release(self, claims: Sequence[Claim]) -> None:
        if not claims:
            return
        try:
            await self._store.release(claims)
        except StoreError as exc:
            # Their leases run out and they come due again; only the wait is longer.
            self._log.error("claims_not_released", count=len(claims), error=str(exc))
            return
        self._log.info("claims_released", count=len(claims))
