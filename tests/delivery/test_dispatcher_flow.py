"""How the dispatcher schedules work: order, concurrency, the breaker, leases, shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import aiohttp
from aiohttp import web

from sftriggerd.delivery import BreakerPolicy, Dispatcher
from sftriggerd.metrics import Metrics
from sftriggerd.store.base import Store
from sftriggerd.store.memory import MemoryStore
from sftriggerd.store.records import Claim, Outcome
from tests.delivery.rig import MS, endpoint, enqueue, new_event, row, running
from tests.support.receiver import Arrival, Receiver
from tests.support.waiting import eventually


async def all_delivered(store: Store, count: int) -> bool:
    rows = await store.list_deliveries(status="delivered", limit=1000)
    return len(rows) == count


async def test_per_record_order_holds_across_a_retry(
    store: Store, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    async def fail_a1_once(arrival: Arrival) -> web.StreamResponse:
        if arrival.event_id == "a1" and arrival.attempt == 1:
            return web.Response(status=500)
        return web.Response(status=200)

    receiver.respond = fail_a1_once
    hook = endpoint(receiver.url, ordering="per_record")
    async with running(Dispatcher(store, [hook], Metrics(), jitter=lambda: 0.5)):
        await enqueue(store, new_event("a1", "A"), new_event("a2", "A"), new_event("b1", "B"))
        await eventually(lambda: all_delivered(store, 3))
    ids = receiver.ids()
    assert ids.count("a1") == 2 and ids.count("a2") == 1
    # A's second change waits for its first; B is not held up by A.
    assert ids.index("a2") > len(ids) - 1 - ids[::-1].index("a1")
    assert ids.index("b1") < 2
    retried, newer = receiver.of("a1")[1], receiver.of("a2")[0]
    assert retried.at - receiver.of("a1")[0].at >= 0.1
    assert newer.at - retried.at < 0.5  # unblocked by the retry's success, not by a poll


async def test_max_in_flight_bounds_concurrent_sends(
    store: Store, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    async def slow(arrival: Arrival) -> web.StreamResponse:
        await asyncio.sleep(0.05)
        return web.Response(status=200)

    receiver.respond = slow
    hook = endpoint(receiver.url, max_in_flight=3, ordering="none")
    async with running(Dispatcher(store, [hook], Metrics())):
        await enqueue(store, *(new_event(f"e{n}") for n in range(10)))
        await eventually(lambda: all_delivered(store, 10))
    assert receiver.most_in_flight == 3
    assert sorted(receiver.ids()) == sorted(f"e{n}" for n in range(10))


async def test_the_breaker_opens_after_n_failures_and_probes(
    store: Store, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    healthy = False

    async def flaky(arrival: Arrival) -> web.StreamResponse:
        return web.Response(status=200 if healthy else 502)

    receiver.respond = flaky
    hook = endpoint(receiver.url, max_in_flight=1, ordering="none", schedule=(50 * MS,))
    policy = BreakerPolicy(failure_threshold=3, cooldown=300 * MS, max_cooldown=timedelta(1))
    metrics = Metrics()
    sender = Dispatcher(store, [hook], metrics, jitter=lambda: 0.5, breaker=policy)

    def breaker_open() -> float | None:
        return metrics.registry.get_sample_value("sftriggerd_breaker_open", {"endpoint": "hook"})

    async with running(sender):
        await enqueue(store, *(new_event(f"e{n}") for n in range(4)))
        await eventually(lambda: _arrived(receiver, 3))
        await asyncio.sleep(0.05)
        snapshot = sender.breakers()["hook"]
        assert (snapshot.state, snapshot.consecutive_failures) == ("open", 3)
        assert breaker_open() == 1
        await eventually(lambda: _arrived(receiver, 4))  # the probe
        await asyncio.sleep(0.05)
        assert sender.breakers()["hook"].state == "open"
        assert sender.breakers()["hook"].cooldown == 600 * MS
        healthy = True
        await eventually(lambda: all_delivered(store, 4))
        assert sender.breakers()["hook"].state == "closed"
        assert breaker_open() == 0
    at = [arrival.at for arrival in receiver.arrivals]
    assert at[2] - at[0] < 0.25  # three quick failures
    assert at[3] - at[2] >= 0.3  # nothing while open
    assert at[4] - at[3] >= 0.6  # the failed probe doubled the cooldown


async def test_shutdown_records_a_2xx_and_releases_unfinished_claims(
    store: Store, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    async def slow_or_hang(arrival: Arrival) -> web.StreamResponse:
        if arrival.event_id == "slow":
            await asyncio.sleep(0.15)
            return web.Response(status=200)
        return await receiver.hang()

    receiver.respond = slow_or_hang
    hook = endpoint(receiver.url, ordering="none", timeout=timedelta(seconds=10))
    sender = Dispatcher(store, [hook], Metrics(), shutdown_grace=400 * MS)
    stopping = asyncio.Event()
    task = asyncio.create_task(sender.run(stopping))
    await enqueue(store, new_event("slow"), new_event("hang1"), new_event("hang2"))
    await eventually(lambda: _arrived(receiver, 3))
    stopping.set()
    started = time.monotonic()
    await asyncio.wait_for(task, timeout=5)
    # The grace, then release: well before the hung requests' 10 s timeout. Not tighter:
    # a loaded VM once took 2.2 s here (the outcome and the release each commit to disk).
    assert 0.35 <= time.monotonic() - started < 3.0
    assert (await row(store, "slow")).status == "delivered"
    for name in ("hang1", "hang2"):
        released = await row(store, name)
        assert (released.status, released.attempts, released.last_error) == ("pending", 0, None)
        assert released.next_attempt_at is not None
        assert released.next_attempt_at <= datetime.now(UTC)
    again = await store.claim_due("hook", 10, timedelta(seconds=30))
    assert sorted(claim.event_id for claim in again) == ["hang1", "hang2"]


class SlowOutcomes(MemoryStore):
    """A store whose outcome writes take longer than the shutdown grace."""

    async def record_outcomes(self, outcomes: Sequence[tuple[Claim, Outcome]]) -> list[bool]:
        await asyncio.sleep(0.3)
        return await super().record_outcomes(outcomes)


async def test_a_shutdown_during_the_outcome_write_still_records_it(
    http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    store = SlowOutcomes()
    await store.open()
    try:
        stopping = asyncio.Event()

        async def answer_and_stop(arrival: Arrival) -> web.StreamResponse:
            stopping.set()
            return web.Response(status=200)

        receiver.respond = answer_and_stop
        sender = Dispatcher(store, [endpoint(receiver.url)], Metrics(), shutdown_grace=MS)
        task = asyncio.create_task(sender.run(stopping))
        await enqueue(store, new_event("evt_1"))
        await asyncio.wait_for(task, timeout=5)
        delivered = await row(store, "evt_1")
        assert (delivered.status, delivered.attempts) == ("delivered", 1)
    finally:
        await store.close()


class SlowClaims(MemoryStore):
    """A store whose first claim comes back when its lease has nearly run out."""

    delayed = False

    async def claim_due(self, endpoint: str, limit: int, lease: timedelta) -> list[Claim]:
        claims = await super().claim_due(endpoint, limit, lease)
        if claims and not self.delayed:
            self.delayed = True
            await asyncio.sleep(0.4)
        return claims

    async def release(self, claims: Sequence[Claim]) -> None:
        self.released = [claim.event_id for claim in claims]
        await super().release(claims)


async def test_a_claim_whose_lease_ran_short_is_given_back_not_sent(
    http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    store = SlowClaims()
    await store.open()
    try:
        hook = endpoint(receiver.url, timeout=200 * MS)
        sender = Dispatcher(store, [hook], Metrics(), lease=500 * MS)
        async with running(sender):
            await enqueue(store, new_event("evt_1"))
            await eventually(lambda: all_delivered(store, 1))
        assert store.released == ["evt_1"]
        assert len(receiver.arrivals) == 1
        assert (await row(store, "evt_1")).attempts == 1
    finally:
        await store.close()


async def _arrived(receiver: Receiver, count: int) -> bool:
    return len(receiver.arrivals) >= count


class GatedOutcomes(MemoryStore):
    """A store whose outcome writes wait until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.batches: list[int] = []

    async def record_outcomes(self, outcomes: Sequence[tuple[Claim, Outcome]]) -> list[bool]:
        self.batches.append(len(outcomes))
        await self.gate.wait()
        return await super().record_outcomes(outcomes)


async def test_sends_go_on_while_outcomes_wait_and_a_slow_store_holds_claiming_back(
    http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    store = GatedOutcomes()
    await store.open()
    try:
        hook = endpoint(receiver.url, max_in_flight=2, ordering="none")
        async with running(Dispatcher(store, [hook], Metrics())):
            await enqueue(store, *(new_event(f"e{n}") for n in range(30)))
            # Nothing is recorded yet, yet the two send slots keep going...
            await eventually(lambda: _arrived(receiver, 8))
            await asyncio.sleep(0.2)
            # ...until answered-but-unrecorded plus claimed reach 4 x max_in_flight.
            assert len(receiver.arrivals) == 8
            assert await all_delivered(store, 0)
            store.gate.set()
            await eventually(lambda: all_delivered(store, 30))
        assert sorted(receiver.ids()) == sorted(f"e{n}" for n in range(30))
        # Outcomes that gathered while a write waited went to the store together.
        assert max(store.batches) > 1
    finally:
        await store.close()


async def test_a_breaker_opening_during_shutdown_does_not_hold_it_for_the_grace(
    store: Store, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    async def slow_failure(arrival: Arrival) -> web.StreamResponse:
        await asyncio.sleep(0.2)
        return web.Response(status=500)

    receiver.respond = slow_failure
    policy = BreakerPolicy(failure_threshold=1, cooldown=timedelta(seconds=30))
    hook = endpoint(receiver.url, max_in_flight=2, ordering="none")
    sender = Dispatcher(
        store, [hook], Metrics(), shutdown_grace=timedelta(seconds=3), breaker=policy
    )
    stopping = asyncio.Event()
    task = asyncio.create_task(sender.run(stopping))
    await enqueue(store, new_event("evt_1"))
    await eventually(lambda: _arrived(receiver, 1))
    stopping.set()
    started = time.monotonic()
    await asyncio.wait_for(task, timeout=5)
    # The failure opened the breaker while the send drained; shutdown ends with that send.
    assert time.monotonic() - started < 1.0
    assert sender.breakers()["hook"].state == "open"
    assert (await row(store, "evt_1")).attempts == 1
