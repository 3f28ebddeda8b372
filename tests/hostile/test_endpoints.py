"""Hostile endpoints, through real local receivers and a real SQLite store: one endpoint that
hangs, fails or answers garbage hurts neither the other endpoints nor the dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from sftriggerd.delivery import Dispatcher
from sftriggerd.metrics import Metrics
from sftriggerd.routing import order_key
from sftriggerd.store.base import Store
from sftriggerd.store.records import Checkpoint, DeliveryRow, NewEvent
from tests.delivery.rig import MS, endpoint, running
from tests.support.clock import ShiftedClock
from tests.support.receiver import Arrival, Receiver
from tests.support.waiting import eventually

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    """A real local receiver at the returned URL."""
    app = web.Application()
    app.router.add_post("/hook", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.2, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[Receiver]:
    async with serving(receiver.handle) as url:
        receiver.url = url
        try:
            yield receiver
        finally:
            receiver.hang_until.set()


_batches = iter(range(1, 1_000_000))


async def enqueue(
    store: Store, endpoint_name: str, *names: str, to: Dispatcher | None = None
) -> None:
    """Stores events for one endpoint and tells the dispatcher, as ingest does."""
    now = datetime.now(UTC)
    events = [
        NewEvent(
            event_id=name,
            record_id=f"rec-{name}",
            occurred_at=now,
            body=f'{{"id":"{name}"}}'.encode(),
            endpoints=(endpoint_name,),
            ordered_endpoints=frozenset({endpoint_name}),
            order_key=order_key("t", f"rec-{name}"),
        )
        for name in names
    ]
    await store.ingest("t", events, Checkpoint(trigger="t", position={"n": next(_batches)}))
    if to is not None:
        to.notify([endpoint_name])


async def rows(store: Store, endpoint_name: str) -> list[DeliveryRow]:
    return await store.list_deliveries(endpoint=endpoint_name, limit=10_000)


async def count(store: Store, endpoint_name: str, status: str) -> int:
    return sum(r.status == status for r in await rows(store, endpoint_name))


async def test_a_hanging_endpoint_does_not_slow_a_healthy_one(store: Store) -> None:
    """Item 5: 150 sends hang at one endpoint (more than a shared pool of 100 holds); the
    other endpoint's 30 deliveries still go out at once, first attempt each."""
    async with receiving(Receiver()) as stuck, receiving(Receiver()) as healthy:
        stuck.respond = lambda arrival: stuck.hang()
        hanging = endpoint(stuck.url, name="stuck", max_in_flight=150, ordering="none")
        prompt = endpoint(healthy.url, name="healthy", timeout=timedelta(seconds=1))
        dispatcher = Dispatcher(store, [hanging, prompt], Metrics(), shutdown_grace=MS)
        async with running(dispatcher):
            await enqueue(store, "stuck", *(f"s{n}" for n in range(150)), to=dispatcher)
            await eventually(lambda: _at_least(stuck, 150))
            started = time.monotonic()
            await enqueue(store, "healthy", *(f"h{n}" for n in range(30)), to=dispatcher)
            await eventually(lambda: _delivered(store, "healthy", 30), timeout_s=4)
            took_s = time.monotonic() - started
            assert dispatcher.breakers()["healthy"].state == "closed"
        assert took_s < 1.0
        assert sorted(healthy.ids()) == sorted(f"h{n}" for n in range(30))
        assert all(r.attempts == 1 for r in await rows(store, "healthy"))


async def test_with_the_breaker_open_deliveries_still_expire_at_max_age(
    store: Store,
) -> None:
    """Item 8: the breaker opens on the first failure and stays open for an hour; every
    delivery still goes dead at max_age, saying why; after a restart with the endpoint
    healthy, a redrive delivers them all."""
    receiver = Receiver()
    failing = True

    async def answer(arrival: Arrival) -> web.StreamResponse:
        return web.Response(status=500 if failing else 204)

    receiver.respond = answer
    async with receiving(receiver):
        hook = endpoint(
            receiver.url,
            max_age=timedelta(milliseconds=600),
            breaker={"failure_threshold": 1, "cooldown": "1h", "max_cooldown": "2h"},
        )
        dispatcher = Dispatcher(store, [hook], Metrics(), expiry_interval=50 * MS)
        async with running(dispatcher):
            await enqueue(store, "hook", "first", to=dispatcher)
            await eventually(lambda: _open(dispatcher))
            await enqueue(store, "hook", "second", "third", to=dispatcher)
            await eventually(lambda: _counted(store, "hook", "dead", 3))
        dead = {r.event_id: r for r in await rows(store, "hook")}
        assert receiver.ids() == ["first"]
        assert {r.last_error for r in dead.values()} == {
            "expired after max_age 600ms; breaker open"
        }
        assert dead["first"].last_status == 500
        # The aftermath: a restart, the endpoint healthy again, a redrive.
        failing = False
        healthy = endpoint(receiver.url, max_age=timedelta(days=1))
        restarted = Dispatcher(store, [healthy], Metrics())
        async with running(restarted):
            assert await store.redrive_endpoint("hook") == 3
            restarted.notify(["hook"])
            await eventually(lambda: _counted(store, "hook", "delivered", 3))
        assert sorted(receiver.ids()) == ["first", "first", "second", "third"]


async def test_the_default_breaker_policy_is_the_endpoints_own(store: Store) -> None:
    """Per-endpoint thresholds: one endpoint opens after 2 failures, the other after 5."""
    async with serving(_always(500)) as url:
        once = {"max_in_flight": 1, "schedule": (timedelta(hours=1),)}
        quick = endpoint(url, name="quick", breaker={"failure_threshold": 2}, **once)
        patient = endpoint(url, name="patient", **once)
        dispatcher = Dispatcher(store, [quick, patient], Metrics())
        async with running(dispatcher):
            await enqueue(store, "quick", "q1", "q2", "q3", to=dispatcher)
            await enqueue(store, "patient", "p1", "p2", "p3", to=dispatcher)
            await eventually(lambda: _open(dispatcher, "quick"))
            await eventually(lambda: _attempts(store, "patient", 3))
            assert dispatcher.breakers()["patient"] == replace(
                dispatcher.breakers()["patient"], state="closed", consecutive_failures=3
            )
            assert dispatcher.breakers()["quick"].consecutive_failures == 2
        assert await count(store, "quick", "pending") == 3


@pytest.mark.parametrize(
    "retry_after", ["²", "9" * 5000, "-5", "soon", "Wed, 99 Foo 2026 99:99:99 GMT", "١٢"]
)
async def test_garbage_retry_after_is_a_retry_not_a_crash(store: Store, retry_after: str) -> None:
    """Item 4: a 429 with a garbage Retry-After ended the dispatcher; now the delivery is
    retried (on the schedule, or capped at max_age for an endless number)."""
    receiver = Receiver()

    async def answer(arrival: Arrival) -> web.StreamResponse:
        if arrival.attempt == 1:
            return web.Response(status=429, headers={"Retry-After": retry_after})
        return web.Response(status=204)

    receiver.respond = answer
    async with receiving(receiver):
        hook = endpoint(receiver.url, max_age=timedelta(days=1))
        dispatcher = Dispatcher(store, [hook], Metrics())
        async with running(dispatcher) as stopping:
            await enqueue(store, "hook", "a", "b", to=dispatcher)
            if retry_after.isascii() and retry_after.isdigit():
                await eventually(lambda: _attempted_each(store, "hook", 1))
                for waiting in await rows(store, "hook"):
                    assert waiting.status == "pending" and waiting.next_attempt_at is not None
                    assert waiting.next_attempt_at - datetime.now(UTC) > timedelta(hours=23)
            else:
                await eventually(lambda: _counted(store, "hook", "delivered", 2))
            assert not stopping.is_set()
    assert receiver.ids().count("b") <= 2


async def test_a_huge_error_body_is_cut_short(store: Store) -> None:
    """A 500 whose body never ends: the attempt ends at once with a short snippet, and the
    next delivery goes out."""
    sent_bytes = 0

    async def endless(request: web.Request) -> web.StreamResponse:
        nonlocal sent_bytes
        await request.read()
        response = web.StreamResponse(status=500)
        response.content_length = 1 << 40
        await response.prepare(request)
        chunk = b"x" * 65536
        with contextlib.suppress(ConnectionError, RuntimeError):
            while sent_bytes < 1 << 30:
                await response.write(chunk)
                sent_bytes += len(chunk)
        return response

    async with serving(endless) as url:
        hook = endpoint(url, schedule=(timedelta(hours=1),), ordering="none")
        dispatcher = Dispatcher(store, [hook], Metrics(), shutdown_grace=MS)
        async with running(dispatcher):
            started = time.monotonic()
            await enqueue(store, "hook", "a", "b", to=dispatcher)
            await eventually(lambda: _attempted_each(store, "hook", 1))
            took_s = time.monotonic() - started
        [row] = [r for r in await rows(store, "hook") if r.event_id == "a"]
    assert took_s < 1.5
    assert row.last_status == 500 and row.last_error is not None
    assert len(row.last_error) <= len("HTTP 500: ") + 200
    assert sent_bytes < 64 << 20  # never read to the end


async def test_a_slow_drip_answer_times_out(store: Store) -> None:
    """Headers that trickle in a byte at a time: the attempt ends at the endpoint's timeout
    (a timeout for the whole answer, not per read), and is retried."""

    dripping: list[asyncio.Task[None]] = []
    closed: list[asyncio.Event] = []

    async def drip(writer: asyncio.StreamWriter) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.05)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            done = asyncio.Event()
            closed.append(done)
            await reader.readuntil(b"\r\n\r\n")
            task = asyncio.create_task(drip(writer))
            dripping.append(task)
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await task
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            done.set()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        hook = endpoint(f"http://127.0.0.1:{port}/hook", timeout=timedelta(milliseconds=500))
        dispatcher = Dispatcher(store, [hook], Metrics(), shutdown_grace=MS)
        async with running(dispatcher):
            started = time.monotonic()
            await enqueue(store, "hook", "a", to=dispatcher)
            await eventually(lambda: _attempts(store, "hook", 1))
            took_s = time.monotonic() - started
        [row] = await rows(store, "hook")
    finally:
        for task in dripping:
            task.cancel()
        for done in closed:  # each handler closes its connection
            await asyncio.wait_for(done.wait(), timeout=2)
        server.close()
        await server.wait_closed()
    assert 0.4 < took_s < 1.5
    assert row.status == "pending" and row.last_error == "timeout after 0.5s"


def _always(status: int) -> Handler:
    async def answer(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.Response(status=status)

    return answer


async def _at_least(receiver: Receiver, arrivals: int) -> bool:
    return len(receiver.arrivals) >= arrivals


async def _delivered(store: Store, endpoint_name: str, wanted: int) -> bool:
    return await count(store, endpoint_name, "delivered") == wanted


async def _counted(store: Store, endpoint_name: str, status: str, wanted: int) -> bool:
    return await count(store, endpoint_name, status) == wanted


async def _open(dispatcher: Dispatcher, name: str = "hook") -> bool:
    return dispatcher.breakers()[name].state == "open"


async def _attempts(store: Store, endpoint_name: str, wanted: int) -> bool:
    return sum(r.attempts for r in await rows(store, endpoint_name)) >= wanted


async def _attempted_each(store: Store, endpoint_name: str, wanted: int) -> bool:
    found = await rows(store, endpoint_name)
    return bool(found) and all(r.attempts >= wanted or r.status == "delivered" for r in found)


async def test_a_store_failure_during_the_sweep_is_retried_by_the_next(
    store: Store, clock: ShiftedClock
) -> None:
    """The sweep meets a store that cannot answer: nothing is lost and nothing raises; the
    next sweep, once the store is back, expires what is overdue; a quiet sweep after it
    finds nothing."""
    hook = endpoint("http://127.0.0.1:9/hook", max_age=timedelta(milliseconds=1))
    dispatcher = Dispatcher(store, [hook], Metrics())
    await enqueue(store, "hook", "old")
    await store.close()
    assert await dispatcher.expire_overdue("hook") == 0
    await store.open()
    assert await count(store, "hook", "pending") == 1
    clock.advance(timedelta(milliseconds=2))  # past max_age on the store's clock
    assert await dispatcher.expire_overdue("hook") == 1
    [row] = await rows(store, "hook")
    assert (row.status, row.last_error) == (
        "dead",
        "expired after max_age 1ms without a final attempt",
    )
    assert await dispatcher.expire_overdue("hook") == 0
