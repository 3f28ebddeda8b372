"""Who leads what, as the admin API and the status page show it: read from the store, so
every replica answers alike."""

from __future__ import annotations

import dataclasses
from typing import Any

import aiohttp

from sftriggerd.daemon import led_status
from sftriggerd.leadership import Leadership
from sftriggerd.metrics import Metrics
from sftriggerd.sources.restartable import RestartableSource
from sftriggerd.sources.status import TriggerStatus
from sftriggerd.store.base import Store
from sftriggerd.store.records import Checkpoint
from tests.admin.test_api import make_state, seed
from tests.admin.test_replay_api import admin_for
from tests.admin.test_replay_api import make_state as replay_state
from tests.leadership.replicas import STEADY, replica, run_out
from tests.support.admin import Serve
from tests.support.clock import ShiftedClock
from tests.unit.test_restartable import Builds

__all__ = ["admin_for"]  # the rewind test's fixture, shared with the replay API's tests


async def test_replicas_lists_each_live_replica_and_the_triggers_it_leads(
    store: Store, serve: Serve, http: aiohttp.ClientSession
) -> None:
    triggers = ("t1", "t2", "t3")
    a, b = replica(store, "a", triggers), replica(store, "b", triggers)
    await store.heartbeat("b", a.leadership.timing.takeover)
    await a.leadership.round()
    await b.leadership.round()
    await store.heartbeat("gone", a.leadership.timing.takeover)
    await store.retire_replica("gone")
    base = await serve(dataclasses.replace(make_state(store), replica="b"))
    async with http.get(base + "/api/replicas") as response:
        assert response.status == 200
        body = await response.json()
    assert [(r["name"], r["this"], r["triggers"]) for r in body] == [
        ("a", False, a.leadership.led()),
        ("b", True, b.leadership.led()),
    ]
    assert sorted(a.leadership.led() + b.leadership.led()) == list(triggers)
    assert all(r["started_at"].endswith("Z") and r["heartbeat_at"] for r in body)
    async with http.get(base + "/") as response:
        page = await response.text()
    assert 'data-replica="a"' in page and 'data-replica="b"' in page
    assert "this one" in page


async def test_a_released_lease_is_led_by_nobody(
    store: Store, serve: Serve, http: aiohttp.ClientSession
) -> None:
    a = replica(store, "a")
    await a.leadership.round()
    await a.leadership.hand_over()
    await store.heartbeat("b", a.leadership.timing.takeover)
    base = await serve(make_state(store))
    async with http.get(base + "/api/replicas") as response:
        assert [(r["name"], r["triggers"]) for r in await response.json()] == [("b", [])]


async def test_a_trigger_shows_its_leader_and_stands_by_where_it_is_not_led(
    store: Store,
) -> None:
    a, b = replica(store, "a"), replica(store, "b")
    await a.leadership.round()
    await b.leadership.round()
    status = TriggerStatus(name="t", mode="polling", mode_reason="configured")
    status.state, status.checkpoint, status.last_error = "running", "pos", "an old error"
    on_a, on_b = led_status(status, a.leadership), led_status(status, b.leadership)
    assert (on_a["leader"], on_a["state"], on_a["checkpoint"]) == ("a", "running", "pos")
    assert (on_b["leader"], on_b["state"], on_b["checkpoint"]) == ("a", "standby", None)
    assert on_b["last_error"] is None


async def test_a_rewind_goes_through_the_leader_only(
    store: Store, clock: ShiftedClock, admin_for: Any
) -> None:
    position = {"replay_id": 90, "channel": "/data/AccountChangeEvent"}
    await store.ingest("accounts", [], Checkpoint(trigger="accounts", position=position))
    rigs = {}
    for name in ("a", "b"):
        source = RestartableSource("accounts", Builds())
        leadership = Leadership(store, name, {"accounts": source}, STEADY, Metrics())
        await leadership.round()
        state = replay_state(store)
        state.sources, state.replica = {"accounts": source}, name
        state.leads, state.fence_for = leadership.leads, leadership.fence_for
        rigs[name] = (leadership, await admin_for(state))
    (a, on_a), (b, on_b) = rigs["a"], rigs["b"]
    status, body = await on_b.post("/api/triggers/accounts/rewind", {"to": "12", "resend": True})
    assert status == 409 and "does not lead" in body["error"]
    assert await replay_id(store) == 90
    status, body = await on_a.post("/api/triggers/accounts/rewind", {"to": "12"})
    assert status == 200 and body["restarted"] is True
    assert await replay_id(store) == 12
    # "a" paused past its lease and "b" took over; "a" has not noticed yet: refused anyway.
    await run_out(store, clock, "accounts")
    await b.round()
    assert a.leads("accounts")
    status, body = await on_a.post("/api/triggers/accounts/rewind", {"to": "5"})
    assert status == 409
    assert await replay_id(store) == 12
    await a.hand_over()
    await b.hand_over()


async def test_a_replica_that_lost_the_lease_is_refused_before_it_resends_anything(
    store: Store, clock: ShiftedClock, admin_for: Any
) -> None:
    """The rewind's fence is checked before its resend: refused with 409, nothing is pending
    again (resent on behalf of a replica that no longer leads the trigger)."""
    delivered, dead = await seed(store)
    position = {"replay_id": 90, "channel": "/data/AccountChangeEvent"}
    await store.ingest("accounts", [], Checkpoint(trigger="accounts", position=position))
    source = RestartableSource("accounts", Builds())
    a = Leadership(store, "a", {"accounts": source}, STEADY, Metrics())
    b = Leadership(
        store, "b", {"accounts": RestartableSource("accounts", Builds())}, STEADY, Metrics()
    )
    await a.round()
    state = replay_state(store)
    state.sources, state.replica = {"accounts": source}, "a"
    state.leads, state.fence_for = a.leads, a.fence_for
    on_a = await admin_for(state)
    # "a" paused past its lease and "b" took over; "a" has not noticed yet.
    await run_out(store, clock, "accounts")
    await b.round()
    assert a.leads("accounts") and b.leads("accounts")
    status, body = await on_a.post("/api/triggers/accounts/rewind", {"to": "1h", "resend": True})
    assert status == 409 and "does not lead" in body["error"], body
    assert [(await store.get_delivery(d)).status for d in (delivered, dead)] == [  # type: ignore[union-attr]
        "delivered",
        "dead",
    ]
    assert await replay_id(store) == 90
    await a.hand_over()
    await b.hand_over()


async def replay_id(store: Store) -> object:
    saved = await store.checkpoint("accounts")
    return None if saved is None else saved.position["replay_id"]
