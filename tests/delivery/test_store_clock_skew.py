"""A database clock half a minute off this process's: deliveries still go out, a retry comes due
after its own delay (not the skew's), max_age counts on the store's clock, and no worker spins
(each worker here idles a minute, so only what the store says is due wakes it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp import web

from sftriggerd.delivery import Dispatcher
from sftriggerd.metrics import Metrics
from sftriggerd.store.postgres import PostgresStore
from sftriggerd.store.records import Claim
from tests.delivery.rig import MS, endpoint, enqueue, new_event, row, running
from tests.support.receiver import Arrival, Receiver
from tests.support.waiting import eventually

RETRY_DELAY = 300 * MS
# Far shorter than the skew: a replica that counted max_age from the store's `retry_since`
# on its own clock would find a delivery of a database behind it dead at its first failure.
MAX_AGE = timedelta(seconds=10)
# Far fewer claims than a worker looping on a due time it misreads would make.
FEW_CLAIMS = 20


class CountingStore(PostgresStore):
    """The PostgreSQL engine, counting how often a worker asks it for work."""

    claims = 0

    async def claim_due(self, endpoint: str, limit: int, lease: timedelta) -> list[Claim]:
        self.claims += 1
        return await super().claim_due(endpoint, limit, lease)


@pytest.fixture(params=[30, -30], ids=["database-ahead-30s", "database-behind-30s"])
async def skewed(request: pytest.FixtureRequest, postgres_url: str) -> AsyncIterator[CountingStore]:
    ahead = timedelta(seconds=request.param)
    store = CountingStore(postgres_url, clock_shift=lambda: ahead)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def test_a_skewed_database_clock_neither_delays_nor_loses_nor_spins(
    skewed: CountingStore, receiver: Receiver
) -> None:
    async def fail_a1_once(arrival: Arrival) -> web.StreamResponse:
        first_try = arrival.event_id == "a1" and arrival.attempt == 1
        return web.Response(status=500 if first_try else 204)

    receiver.respond = fail_a1_once
    hook = endpoint(receiver.url, schedule=(RETRY_DELAY,), max_age=MAX_AGE)
    dispatcher = Dispatcher(
        skewed, [hook], Metrics(), jitter=lambda: 0.5, max_idle=timedelta(seconds=60)
    )
    async with running(dispatcher):
        await enqueue(skewed, new_event("a1", "A"), new_event("a2", "A"), new_event("b1", "B"))
        dispatcher.notify(["hook"])
        await eventually(lambda: len(receiver.arrivals) == 4, timeout_s=10)
        await eventually(lambda: _all_delivered(skewed, ["a1", "a2", "b1"]))
    assert [a.event_id for a in receiver.arrivals if a.event_id != "b1"] == ["a1", "a1", "a2"]
    first, retried = receiver.of("a1")
    assert retried.at - first.at >= RETRY_DELAY.total_seconds() * 0.9  # not early
    assert (await row(skewed, "a1")).attempts == 2
    assert skewed.claims < FEW_CLAIMS


async def _all_delivered(store: PostgresStore, event_ids: list[str]) -> bool:
    return all([(await row(store, event_id)).status == "delivered" for event_id in event_ids])
