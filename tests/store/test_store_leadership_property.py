"""Leases as a property: whatever mix of acquisitions, renewals, releases, leases running
out and fenced writes by three replicas, a trigger has at most one holder, each new holder
gets the next epoch, and a fenced write goes in exactly when its fence holds the running
lease (and otherwise writes nothing).

Lease lengths are none at all (it runs out as taken) or an hour (it runs all through the
example), so the store's clock never needs to be steered."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sftriggerd.store.base import Store
from sftriggerd.store.leadership import Fence, LeaseLostError
from sftriggerd.store.memory import MemoryStore
from sftriggerd.store.postgres import PostgresStore
from sftriggerd.store.sqlite import SqliteStore
from tests.store.test_store_contract import checkpoint

REPLICAS = ("a", "b", "c")
LENGTHS = {"hour": timedelta(hours=1), "none": timedelta(0)}

replicas = st.sampled_from(REPLICAS)
epochs = st.integers(0, 6)
lengths = st.sampled_from(sorted(LENGTHS))
steps = st.lists(
    st.one_of(
        st.tuples(st.just("acquire"), replicas, lengths),
        st.tuples(st.just("renew"), replicas, epochs, lengths),
        st.tuples(st.just("release"), replicas, epochs),
        st.tuples(st.just("write"), replicas, epochs),
        st.tuples(st.just("rewind"), replicas, epochs),
    ),
    max_size=40,
)


@dataclass
class Lease:
    holder: str = ""
    epoch: int = 0
    live: bool = False

    def held_by(self, fence: Fence) -> bool:
        return self.live and (self.holder, self.epoch) == (fence.replica, fence.epoch)


ENGINES: dict[str, Callable[[], Store]] = {
    "sqlite": lambda: SqliteStore(":memory:"),
    "memory": MemoryStore,
}


async def play(make: Callable[[], Store], actions: list[tuple[object, ...]]) -> None:
    store = make()
    await store.open()
    model, position = Lease(), 0
    try:
        for n, action in enumerate(actions, start=1):
            kind, replica = str(action[0]), str(action[1])
            if kind == "acquire":
                got = await store.acquire_lease("t", replica, LENGTHS[str(action[2])])
                if model.live and model.holder != replica:
                    assert got is None
                else:
                    assert got is not None and (got.holder, got.epoch) == (replica, model.epoch + 1)
                    model = Lease(replica, model.epoch + 1, action[2] == "hour")
            elif kind == "renew":
                fence = Fence(replica, int(str(action[2])))
                renewed = await store.renew_leases(
                    replica, {"t": fence.epoch}, LENGTHS[str(action[3])]
                )
                assert bool(renewed) == model.held_by(fence)
                if renewed:
                    model.live = action[3] == "hour"
            elif kind == "release":
                fence = Fence(replica, int(str(action[2])))
                assert await store.release_lease("t", fence) == model.held_by(fence)
                if model.held_by(fence):
                    model.live = False
            else:
                fence = Fence(replica, int(str(action[2])))
                try:
                    if kind == "write":
                        await store.ingest("t", [], checkpoint(n), fence=fence)
                    else:
                        await store.rewind("t", checkpoint(-n), fence=fence)
                except LeaseLostError:
                    assert not model.held_by(fence)
                else:
                    assert model.held_by(fence)
                    position = n if kind == "write" else -n
            saved = await store.checkpoint("t")
            assert (saved.position["replay_id"] if saved else 0) == position
            leases = await store.leases()
            assert [(x.holder, x.epoch, x.live) for x in leases] == (
                [(model.holder, model.epoch, model.live)] if model.epoch else []
            )
    finally:
        await store.close()


@pytest.mark.parametrize("engine", sorted(ENGINES))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=steps)
def test_one_holder_the_next_epoch_and_fenced_writes_only_under_the_running_lease(
    engine: str, actions: list[tuple[object, ...]]
) -> None:
    asyncio.run(play(ENGINES[engine], actions))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(actions=steps)
def test_the_same_on_postgresql(postgres_url: str, actions: list[tuple[object, ...]]) -> None:
    # One database for the test; each example starts from empty tables.
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("TRUNCATE trigger_leases, checkpoints")
    asyncio.run(play(lambda: PostgresStore(postgres_url), actions))
