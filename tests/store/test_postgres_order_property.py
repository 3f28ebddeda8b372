"""Per-record order as a property, on PostgreSQL: the same model and actions as the SQLite
engine's (`test_store_order_property`), with the database's clock shifted to the model's."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import psycopg
from hypothesis import HealthCheck, given, settings

from sftriggerd.store.postgres import PostgresStore
from tests.store.test_store_order_property import Model, apply, drain, steps

_EMPTY = "TRUNCATE attempts, deliveries, events, checkpoints, poison RESTART IDENTITY CASCADE"


async def play(url: str, actions: list[tuple[object, ...]]) -> None:
    model = Model()
    # The store's clock is the database's, shifted to where the model's clock stands.
    store = PostgresStore(url, clock_shift=lambda: model.clock() - datetime.now(UTC))
    await store.open()
    try:
        for action in actions:
            await apply(store, model, action)  # type: ignore[arg-type]
        await drain(store, model)  # type: ignore[arg-type]
    finally:
        await store.close()
        # One database for every example: emptied, ids from 1 again, as the model counts.
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(_EMPTY)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(steps)
def test_one_delivery_per_record_in_flight_oldest_first_and_none_stuck(
    postgres_url: str, actions: list[tuple[object, ...]]
) -> None:
    asyncio.run(play(postgres_url, actions))
