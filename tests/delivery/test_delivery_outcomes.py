"""Each kind of answer, end to end: real receiver, real SQLite, real dispatcher."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import aiohttp
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from sftriggerd.config.settings import EndpointSettings
from sftriggerd.delivery import Dispatcher
from sftriggerd.metrics import Metrics
from sftriggerd.store.base import Store
from tests.delivery.rig import MS, SECRET, endpoint, enqueue, new_event, row, running
from tests.support.receiver import Arrival, Receiver, unused_url
from tests.support.waiting import eventually

HOUR = timedelta(hours=1)


def dispatcher(
    store: Store, http: aiohttp.ClientSession, metrics: Metrics, hook: EndpointSettings
) -> Dispatcher:
    return Dispatcher(store, [hook], metrics, jitter=lambda: 0.5)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return (
        metrics.registry.get_sample_value(f"sftriggerd_{name}", {"endpoint": "hook", **labels})
        or 0.0
    )


async def test_a_delivery_arrives_signed_and_is_recorded(
    store: Store, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    metrics = Metrics()
    hook = endpoint(receiver.url, headers={"Authorization": "Bearer t0k3n", "webhook-id": "x"})
    async with running(dispatcher(store, http, metrics, hook)):
        await enqueue(store, new_event("evt_1"))
        await eventually(lambda: _delivered(store, "evt_1"))
    [arrival] = receiver.arrivals
    assert Webhook(SECRET).verify(arrival.body, arrival.headers) == {"id": "evt_1"}
    assert arrival.headers["webhook-id"] == "evt_1"
    assert arrival.headers["Authorization"] == "Bearer t0k3n"
    assert arrival.headers["Content-Type"] == "application/json"
    assert arrival.headers["User-Agent"].startswith("sftriggerd/")
    delivered = await row(store, "evt_1")
    assert (delivered.attempts, delivered.last_status, delivered.last_error) == (1, 204, None)
    assert sample(metrics, "deliveries_total", outcome="delivered") == 1
    assert sample(metrics, "delivery_attempt_seconds_count") == 1
    assert sample(metrics, "end_to_end_seconds_sum") >= 1.0  # the event is a second old
    assert sample(metrics, "outbox_pending") == 0


async def test_notify_wakes_the_worker_at_once(
    store: Store, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    hook = endpoint(receiver.url)
    sender = Dispatcher(store, [hook], Metrics(), max_idle=timedelta(seconds=30))
    async with running(sender):
        await enqueue(store, new_event("evt_1"))
        sender.notify(["hook"])
        await eventually(lambda: _delivered(store, "evt_1"))  # first look: at start
        await enqueue(store, new_event("evt_2"))
        started = time.monotonic()
        sender.notify(["hook", "not-an-endpoint"])
        await eventually(lambda: _delivered(store, "evt_2"), timeout_s=2)
        assert time.monotonic() - started < 1.0


async def test_a_500_is_retried_on_the_schedule_then_delivered(
    store: Store, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    async def fail_first(arrival: Arrival) -> web.StreamResponse:
        if arrival.attempt == 1:
            return web.Response(status=500, text="database down")
        return web.Response(status=200)

    receiver.respond = fail_first
    metrics = Metrics()
    async with running(dispatcher(store, http, metrics, endpoint(receiver.url))):
        await enqueue(store, new_event("evt_1"))
        await eventually(lambda: _delivered(store, "evt_1"))
    first, second = receiver.arrivals
    assert second.at - first.at >= 0.1
    assert (await row(store, "evt_1")).attempts == 2
    assert sample(metrics, "deliveries_total", outcome="retry") == 1
    assert sample(metrics, "deliveries_total", outcome="delivered") == 1


async def test_an_endpoint_that_hangs_past_the_timeout_is_retried(
    store: Store, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    async def hang(arrival: Arrival) -> web.StreamResponse:
        return await receiver.hang()

    receiver.respond = hang
    hook = endpoint(receiver.url, timeout=200 * MS, schedule=(HOUR,))
    async with running(dispatcher(store, http, Metrics(), hook)):
        await enqueue(store, new_event("evt_1"))
        await eventually(lambda: _attempted(store, "evt_1"))
    pending = await row(store, "evt_1")
    assert (pending.status, pending.last_status) == ("pending", None)
    assert pending.last_error == "timeout after 0.2s"
    assert pending.next_attempt_at is not None
    assert pending.next_attempt_at > datetime.now(UTC) + timedelta(minutes=50)


async def test_410_is_dead_at_once(
    store: Store, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    async def gone(arrival: Arrival) -> web.StreamResponse:
        return web.Response(status=410, text="this hook was removed")

    receiver.respond = gone
    metrics = Metrics()
    async with running(dispatcher(store, http, metrics, endpoint(receiver.url))):
        await enqueue(store, new_event("evt_1"))
        await eventually(lambda: _status(store, "evt_1", "dead"))
        await eventually(lambda: _gauge_is(metrics, "outbox_dead", 1))
    dead = await row(store, "evt_1")
    assert (dead.attempts, dead.last_status) == (1, 410)
    assert dead.last_error == "HTTP 410: this hook was removed"
    assert len(receiver.arrivals) == 1
    assert sample(metrics, "deliveries_total", outcome="dead") == 1


async def test_429_waits_for_retry_after_seconds(
    store: Store, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    async def slow_down(arrival: Arrival) -> web.StreamResponse:
        if arrival.attempt == 1:
            return web.Response(status=429, headers={"Retry-After": "1"})
        return web.Response(status=200)

    receiver.respond = slow_down
    async with running(dispatcher(store, http, Metrics(), endpoint(receiver.url))):
        await enqueue(store, new_event("evt_1"))
        await eventually(lambda: _delivered(store, "evt_1"))
    first, second = receiver.arrivals
    assert second.at - first.at >= 0.999  # not the 100 ms of the schedule


async def test_503_waits_for_an_http_date_retry_after(
    store: Store, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    asked: list[datetime] = []

    async def unavailable(arrival: Arrival) -> web.StreamResponse:
        if arrival.attempt == 1:
            # HTTP-dates have whole seconds: two seconds ahead is one to two seconds away.
            retry_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
            asked.append(retry_at)
            return web.Response(
                status=503, headers={"Retry-After": format_datetime(retry_at, True)}
            )
        return web.Response(status=200)

    receiver.respond = unavailable
    async with running(dispatcher(store, http, Metrics(), endpoint(receiver.url))):
        await enqueue(store, new_event("evt_1"))
        await eventually(lambda: _attempted(store, "evt_1"))
        waiting = await row(store, "evt_1")
        assert (waiting.last_status, waiting.last_error) == (503, "HTTP 503")
        # The store adds the wait to its own clock as it records it: a moment later.
        assert waiting.next_attempt_at is not None
        assert asked[0] <= waiting.next_attempt_at < asked[0] + timedelta(seconds=1)
        await eventually(lambda: _delivered(store, "evt_1"))
    assert receiver.arrivals[1].at >= asked[0].timestamp()


async def test_connection_refused_is_retried(store: Store, http: aiohttp.ClientSession) -> None:
    metrics = Metrics()
    hook = endpoint(unused_url(), schedule=(HOUR,))
    async with running(dispatcher(store, http, metrics, hook)):
        await enqueue(store, new_event("evt_1"))
        await eventually(lambda: _attempted(store, "evt_1"))
    pending = await row(store, "evt_1")
    assert (pending.status, pending.last_status, pending.last_error) == (
        "pending",
        None,
        "connection refused",
    )
    assert sample(metrics, "delivery_failures_total", cause="refused") == 1
    # Every cause's series exists from the start, at zero, so a rate() sees the first one.
    assert sample(metrics, "delivery_failures_total", cause="timeout") == 0
    assert (
        metrics.registry.get_sample_value(
            "sftriggerd_delivery_failures_total", {"endpoint": "hook", "cause": "tls"}
        )
        == 0
    )


async def test_past_max_age_the_delivery_is_dead_after_a_last_attempt_at_the_deadline(
    store: Store, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    async def broken(arrival: Arrival) -> web.StreamResponse:
        return web.json_response({"error": "still broken"}, status=500)

    receiver.respond = broken
    metrics = Metrics()
    hook = endpoint(receiver.url, max_age=350 * MS)
    async with running(dispatcher(store, http, metrics, hook)):
        await enqueue(store, new_event("evt_1"))
        await eventually(lambda: _status(store, "evt_1", "dead"))
    dead = await row(store, "evt_1")
    assert dead.last_error == 'HTTP 500: {"error": "still broken"} (max_age reached)'
    # At least one retry before the deadline and the last attempt at it; how many fit in
    # 350 ms depends on the engine and the machine's load, not on the rule under test.
    assert dead.attempts == len(receiver.arrivals) >= 2
    deadline_s = dead.created_at.timestamp() + 0.35
    assert receiver.arrivals[-1].at >= deadline_s - 0.005
    assert receiver.arrivals[-2].at < deadline_s
    assert sample(metrics, "deliveries_total", outcome="dead") == 1
    assert sample(metrics, "deliveries_total", outcome="retry") == dead.attempts - 1


async def _status(store: Store, event_id: str, status: str) -> bool:
    return (await row(store, event_id)).status == status


async def _delivered(store: Store, event_id: str) -> bool:
    return await _status(store, event_id, "delivered")


async def _attempted(store: Store, event_id: str) -> bool:
    found = await row(store, event_id)
    return found.attempts >= 1 and found.status != "in_flight"


async def _gauge_is(metrics: Metrics, name: str, value: float) -> bool:
    return sample(metrics, name) == value
