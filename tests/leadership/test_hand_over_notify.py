"""A hand-over on PostgreSQL is heard at once: the release notifies, the followers' wake-up
listener (the dispatcher's LISTEN connection) hears it, and their leadership runs a round
now instead of at its next one, up to `ha.renew_every` later."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from sftriggerd.delivery.wake_ups import WakeUpListener
from sftriggerd.leadership import Leadership, Timing
from sftriggerd.store.postgres import PostgresStore
from tests.leadership.replicas import ReplicaRig, replica
from tests.support.waiting import eventually

# Rounds ten minutes apart: within a test, only a round asked for early runs.
RARE = Timing(takeover=timedelta(minutes=30), renew_every=timedelta(minutes=10))
TRIGGERS = ("t1", "t2")


@asynccontextmanager
async def running(leadership: Leadership) -> AsyncIterator[asyncio.Event]:
    stopping = asyncio.Event()
    task = asyncio.create_task(leadership.run(stopping))
    try:
        yield stopping
    finally:
        stopping.set()
        await task


@asynccontextmanager
async def listening(store: PostgresStore, rig: ReplicaRig) -> AsyncIterator[WakeUpListener]:
    """The follower's wake-up listener, wired to its leadership as the daemon wires it."""
    listener = WakeUpListener(store, ["hook"], lambda names: None)
    listener.on_lease_released = rig.leadership.lease_released
    stopping = asyncio.Event()
    task = asyncio.create_task(listener.run(stopping))
    try:
        await eventually(lambda: listener.heard > 0)  # LISTEN is in place
        yield listener
    finally:
        stopping.set()
        await task


async def test_a_follower_takes_a_handed_over_trigger_at_once(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        a, b = replica(store, "a", TRIGGERS, RARE), replica(store, "b", TRIGGERS, RARE)
        await store.heartbeat("b", RARE.takeover)
        await a.leadership.round()  # two live replicas: one trigger each
        await b.leadership.round()
        assert (a.leadership.led(), b.leadership.led()) == (["t1"], ["t2"])
        async with listening(store, b), running(b.leadership) as stopping_b:
            async with running(a.leadership) as stopping_a:
                await eventually(lambda: a.running() == ["t1"])
                await eventually(lambda: b.running() == ["t2"])
                started = time.monotonic()
                stopping_a.set()  # SIGTERM: "a" retires, then releases "t1"
            # Its lease would run half an hour more, and "b"'s next round is ten minutes away.
            await eventually(lambda: b.running() == list(TRIGGERS))
            took_s = time.monotonic() - started
            print(f"takeover after a hand-over: {took_s * 1000:.0f} ms (renew_every 600 s)")
            assert b.leadership.led() == list(TRIGGERS)
            leases = {x.trigger: (x.holder, x.epoch) for x in await store.leases()}
            assert leases == {"t1": ("b", 2), "t2": ("b", 1)}
            assert b.changes("t1", "acquired") == 1 and b.takeovers() == 1
            # "a" restarts as a follower; then "b" is stopped in turn: "a" takes both at once.
            a = replica(store, "a", TRIGGERS, RARE)
            async with listening(store, a), running(a.leadership):
                await eventually(lambda: a.leadership.not_ready_reasons() == [])
                assert a.leadership.led() == []
                stopping_b.set()
                await eventually(lambda: a.running() == list(TRIGGERS))
                leases = {x.trigger: (x.holder, x.epoch) for x in await store.leases()}
                assert leases == {"t1": ("a", 3), "t2": ("a", 2)}
    finally:
        await store.close()


async def test_the_releaser_runs_no_round_on_its_own_release(postgres_url: str) -> None:
    """A shed releases a lease and notifies: the others run a round, the releaser does not
    (its round would only count the trigger free sooner, and take it back sooner)."""
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        a, b = replica(store, "a", TRIGGERS, RARE), replica(store, "b", TRIGGERS, RARE)
        await a.leadership.round()
        assert a.leadership.led() == list(TRIGGERS)
        async with listening(store, a) as heard_by_a, listening(store, b) as heard_by_b:
            a_before, b_before = heard_by_a.heard, heard_by_b.heard
            await store.heartbeat("b", RARE.takeover)
            await a.leadership.round()  # share 1: t2 shed and released, with a notification
            await eventually(lambda: a.leadership.led() == ["t1"])
            await eventually(lambda: heard_by_b.heard > b_before)
            await eventually(lambda: heard_by_a.heard > a_before)
            assert b.leadership._round_now.is_set()  # a release by another: a round now
            assert not a.leadership._round_now.is_set()  # its own: none
        for rig in (a, b):
            await rig.leadership.hand_over()
    finally:
        await store.close()


async def test_its_own_release_heard_before_the_release_returns_runs_no_round(
    postgres_url: str,
) -> None:
    """Under load the listener may hear a release's NOTIFY before the releasing coroutine
    has its answer back: it is still this replica's own release, and runs no round."""
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        a = replica(store, "a", TRIGGERS, RARE)
        await a.leadership.round()
        assert a.leadership.led() == list(TRIGGERS)
        release = store.release_lease

        async def heard_first(trigger: str, fence: object) -> bool:
            a.leadership.lease_released(trigger)  # the notification, ahead of the answer
            return await release(trigger, fence)  # type: ignore[arg-type]

        store.release_lease = heard_first  # type: ignore[method-assign]
        await store.heartbeat("b", RARE.takeover)
        await a.leadership.round()  # share 1: t2 shed and released
        await eventually(lambda: a.leadership.led() == ["t1"])
        assert not a.leadership._round_now.is_set()
        await a.leadership.hand_over()
    finally:
        await store.close()
