"""Replicas of the dispatcher on one PostgreSQL database: every change delivered once and in
its record's order across them, and an ingest on one replica waking another's workers by
notification, not by their timed look (each worker here idles a minute before looking)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import psycopg
import pytest
from aiohttp import web

from sftriggerd.config import parse_settings
from sftriggerd.delivery import Dispatcher, build_dispatcher
from sftriggerd.metrics import Metrics
from sftriggerd.store.base import Store
from sftriggerd.store.postgres import PostgresStore
from sftriggerd.store.wake_ups import offered_wake_ups
from tests.delivery.rig import MS, endpoint, enqueue, new_event, running
from tests.support.receiver import Arrival, Receiver
from tests.support.waiting import eventually

# Longer than any wait below: a delivery that comes within one was woken, not looked for.
IDLE = timedelta(seconds=60)
SETTINGS = """salesforce:
  auth: {client_id: cid, client_secret: cs, username: u, password: p}
"""


@pytest.fixture
async def replicas(postgres_url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    first, second = PostgresStore(postgres_url), PostgresStore(postgres_url)
    await first.open()
    await second.open()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def listeners(url: str) -> list[int]:
    """The sessions on this database whose last statement was a LISTEN."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND query ILIKE 'LISTEN %%' AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in await cursor.fetchall()]


def delivered_by(metrics: Metrics) -> float:
    labels = {"endpoint": "hook", "outcome": "delivered"}
    return metrics.registry.get_sample_value("sftriggerd_deliveries_total", labels) or 0.0


async def test_only_an_engine_shared_between_processes_offers_wake_ups(store: Store) -> None:
    assert (offered_wake_ups(store) is not None) == isinstance(store, PostgresStore)


async def test_two_replicas_deliver_each_change_once_in_its_records_order(
    replicas: tuple[PostgresStore, PostgresStore], receiver: Receiver
) -> None:
    failing = {f"e{n}" for n in range(0, 120, 7)}  # their first attempt answers 500

    async def fail_some_once(arrival: Arrival) -> web.StreamResponse:
        first_try = arrival.event_id in failing and arrival.attempt == 1
        return web.Response(status=500 if first_try else 204)

    receiver.respond = fail_some_once
    hook = endpoint(receiver.url, ordering="per_record", max_in_flight=4, schedule=(50 * MS,))
    metrics = Metrics(), Metrics()
    a, b = (
        Dispatcher(store, [hook], meters, jitter=lambda: 0.5, max_idle=IDLE, wake_ups=store)
        for store, meters in zip(replicas, metrics, strict=True)
    )
    async with running(a), running(b):
        for first in range(0, 120, 10):  # each replica ingests every other batch
            batch = [new_event(f"e{n}", f"r{n % 10}") for n in range(first, first + 10)]
            await enqueue(replicas[(first // 10) % 2], *batch)
        await eventually(lambda: sum(map(delivered_by, metrics)) == 120, timeout_s=30)
    for record in range(10):
        changes = [f"e{n}" for n in range(record, 120, 10)]
        sent = [arrival.event_id for arrival in receiver.arrivals if arrival.event_id in changes]
        # Oldest first; a failed change is retried before its record's next change goes.
        assert sent == [twice for e in changes for twice in [e] * (2 if e in failing else 1)]
    assert all(delivered_by(meters) > 0 for meters in metrics)  # both replicas took part
    counts = await replicas[0].outbox_counts()
    assert "hook" not in counts  # nothing pending, nothing dead


async def test_an_ingest_on_one_replica_wakes_the_other_at_once(
    replicas: tuple[PostgresStore, PostgresStore], receiver: Receiver, postgres_url: str
) -> None:
    ingesting, delivering = replicas
    hook = endpoint(receiver.url)
    dispatcher = Dispatcher(delivering, [hook], Metrics(), max_idle=IDLE, wake_ups=delivering)
    async with running(dispatcher):
        await eventually(lambda: _listening(postgres_url, 1))
        # The first round may be found by the wake-up every listener starts with; the
        # later ones can only come from the other replica's notification.
        for round_ in range(4):
            await enqueue(ingesting, new_event(f"w{round_}"))
            await eventually(lambda sent=round_ + 1: len(receiver.arrivals) == sent)
    assert receiver.ids() == ["w0", "w1", "w2", "w3"]
    assert dispatcher.listener is not None and dispatcher.listener.heard >= 4


async def test_a_killed_listener_listens_again_and_nothing_is_lost(
    replicas: tuple[PostgresStore, PostgresStore], receiver: Receiver, postgres_url: str
) -> None:
    ingesting, delivering = replicas
    hook = endpoint(receiver.url)
    dispatcher = Dispatcher(delivering, [hook], Metrics(), max_idle=IDLE, wake_ups=delivering)
    async with running(dispatcher):
        await eventually(lambda: _listening(postgres_url, 1))
        [killed] = await listeners(postgres_url)
        await enqueue(ingesting, new_event("before"))
        await eventually(lambda: receiver.ids() == ["before"])
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
            await admin.execute("SELECT pg_terminate_backend(%s)", (killed,))
        # Notified while nobody may listen: found by the wake-up that starts each listening.
        await enqueue(ingesting, new_event("meanwhile"))
        await eventually(lambda: receiver.ids() == ["before", "meanwhile"], timeout_s=10)
        await eventually(lambda: _listens_anew(postgres_url, killed), timeout_s=10)
        await enqueue(ingesting, new_event("after"))
        await eventually(lambda: receiver.ids() == ["before", "meanwhile", "after"])


@pytest.mark.parametrize(("wake_ups", "listening"), [("notify", 1), ("poll", 0)])
async def test_the_daemons_dispatcher_listens_only_when_wake_ups_are_notify(
    replicas: tuple[PostgresStore, PostgresStore],
    receiver: Receiver,
    postgres_url: str,
    wake_ups: str,
    listening: int,
) -> None:
    ingesting, delivering = replicas
    settings = parse_settings(SETTINGS + f"ha:\n  wake_ups: {wake_ups}\n", "c.yaml", {})
    settings = settings.model_copy(update={"endpoints": [endpoint(receiver.url)]})
    dispatcher, notify = build_dispatcher(delivering, settings, Metrics())
    async with running(dispatcher):
        await enqueue(delivering, new_event("own"))
        notify(["hook"])  # this replica's own ingest wakes it directly, either way
        await eventually(lambda: receiver.ids() == ["own"])
        # Another replica's ingest: by notification, or by the timed look (5 s) when polling.
        await enqueue(ingesting, new_event("other"))
        await eventually(lambda: receiver.ids() == ["own", "other"], timeout_s=15)
        await eventually(lambda: _listening(postgres_url, listening))
        assert len(await listeners(postgres_url)) == listening


async def _listening(url: str, expected: int) -> bool:
    return len(await listeners(url)) == expected


async def _listens_anew(url: str, killed: int) -> bool:
    pids = await listeners(url)
    return len(pids) == 1 and pids != [killed]
