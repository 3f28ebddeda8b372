"""What an endpoint worker is made of besides its loops: its options, its own HTTP pool, its
metric children, its lease length, and the wait it sleeps in."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
from prometheus_client.metrics import Counter, Gauge, Histogram

from ..config.settings import EndpointSettings
from ..metrics import Metrics
from .answers import FAILURE_KINDS, FailureKind
from .breaker import BreakerPolicy, Transition


def default_lease(timeout: timedelta) -> timedelta:
    """Long enough for the POST twice over plus the outcome write; at least 30 s."""
    return max(timedelta(seconds=30), 2 * timeout + timedelta(seconds=5))


def endpoint_session(endpoint: EndpointSettings) -> aiohttp.ClientSession:
    """An HTTP session with the endpoint's own connection pool, as large as its
    `max_in_flight`: a hanging endpoint holds only its own connections, never a healthy
    one's, and none of its sends waits for a connection (its timeout is the answer's)."""
    connector = aiohttp.TCPConnector(
        limit=endpoint.max_in_flight, limit_per_host=endpoint.max_in_flight
    )
    return aiohttp.ClientSession(connector=connector)


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
    breaker: BreakerPolicy | None  # None: each endpoint's own `breaker` settings
    max_idle: timedelta
    on_outcome: Callable[[], None]


class Meters:
    """One endpoint's metric children, looked up once rather than per delivery."""

    def __init__(self, metrics: Metrics, endpoint: str) -> None:
        self.attempt_seconds: Histogram = metrics.delivery_attempt_seconds.labels(endpoint=endpoint)
        self.end_to_end_seconds: Histogram = metrics.end_to_end_seconds.labels(endpoint=endpoint)
        self.delivered: Counter = metrics.deliveries.labels(endpoint=endpoint, outcome="delivered")
        self.retried: Counter = metrics.deliveries.labels(endpoint=endpoint, outcome="retry")
        self.dead: Counter = metrics.deliveries.labels(endpoint=endpoint, outcome="dead")
        # Every cause up front: a rate() over a series that appears with its first
        # failure misses that failure.
        self.failures: dict[FailureKind, Counter] = {
            kind: metrics.delivery_failures.labels(endpoint=endpoint, cause=kind)
            for kind in FAILURE_KINDS
        }
        self.breaker_open: Gauge = metrics.breaker_open.labels(endpoint=endpoint)

    def breaker_changed(self, transition: Transition | None) -> None:
        if transition is not None:
            self.breaker_open.set(0 if transition == "closed" else 1)
