"""The admin HTTP API over real HTTP, on a real store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from sftriggerd.admin.state import AdminState
from sftriggerd.config import parse_settings
from sftriggerd.metrics import Metrics
from sftriggerd.store.base import Store
from sftriggerd.store.records import Checkpoint, Dead, Delivered, NewEvent
from tests.support.admin import Serve

CONFIG = """
salesforce: {auth: {client_id: c, client_secret: s, username: u, password: p}}
server: {listen: "127.0.0.1:0", admin_token: "%s"}
"""


def make_state(store: Store, token: str = "") -> AdminState:
    settings = parse_settings(CONFIG % token, environ={})
    return AdminState(settings=settings, metrics=Metrics(), store=store)


async def seed(store: Store) -> list[int]:
    events = [
        NewEvent(
            event_id=f"evt_{n}",
            record_id=f"r{n}",
            occurred_at=datetime.now(UTC),
            body=b"{}",
            endpoints=("hook",),
        )
        for n in range(3)
    ]
    await store.ingest("accounts", events, Checkpoint(trigger="accounts", position={}))
    delivered, dead, _ = await store.claim_due("hook", 3, timedelta(seconds=30))
    await store.record_outcome(delivered, Delivered(status=200))
    await store.record_outcome(dead, Dead(status=410, error="HTTP 410 Gone"))
    return [delivered.delivery_id, dead.delivery_id]


class Admin:
    def __init__(self, base: str, http: aiohttp.ClientSession) -> None:
        self.base = base
        self.http = http

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.base + path) as response:
            return response.status, await response.json()

    async def post(
        self, path: str, token: str | None = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers["Content-Type"] = content_type
        async with self.http.post(self.base + path, headers=headers, data=b"{}") as response:
            return response.status, await response.json()


@pytest.fixture
async def admin_for(serve: Serve) -> AsyncIterator[Any]:
    http = aiohttp.ClientSession()

    async def start(state: AdminState) -> Admin:
        return Admin(await serve(state), http)

    yield start
    await http.close()


async def test_lists_deliveries_with_contract_fields_and_filters(
    store: Store, admin_for: Any
) -> None:
    await seed(store)
    admin = await admin_for(make_state(store))
    status, rows = await admin.get("/api/deliveries")
    assert status == 200 and len(rows) == 3
    assert set(rows[0]) == {
        "id",
        "event_id",
        "endpoint",
        "trigger",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status",
        "last_error",
        "created_at",
    }
    status, dead = await admin.get("/api/deliveries?status=dead&endpoint=hook&limit=5")
    assert [(r["status"], r["last_status"], r["last_error"]) for r in dead] == [
        ("dead", 410, "HTTP 410 Gone")
    ]
    assert (await admin.get("/api/deliveries?endpoint=other"))[1] == []


@pytest.mark.parametrize("query", ["status=lost", "limit=0", "limit=abc", "limit=100000"])
async def test_bad_queries_are_400_with_a_reason(store: Store, admin_for: Any, query: str) -> None:
    admin = await admin_for(make_state(store))
    status, body = await admin.get(f"/api/deliveries?{query}")
    assert status == 400 and body["error"]


async def test_redrive_needs_the_token_when_one_is_set(store: Store, admin_for: Any) -> None:
    _, dead_id = await seed(store)
    redriven: list[str] = []
    state = make_state(store, token="s3cret-admin")
    state.on_redrive = redriven.append
    admin = await admin_for(state)
    assert (await admin.post(f"/api/deliveries/{dead_id}/redrive"))[0] == 401
    assert (await admin.post(f"/api/deliveries/{dead_id}/redrive", "wrong"))[0] == 401
    status, body = await admin.post(f"/api/deliveries/{dead_id}/redrive", "s3cret-admin")
    assert (status, body) == (202, {"id": dead_id, "status": "pending"})
    assert redriven == ["hook"]
    row = await store.get_delivery(dead_id)
    assert row is not None and row.status == "pending" and row.attempts == 0
    status, _ = await admin.get("/api/deliveries")
    assert status == 200  # reads never need the token


async def test_redrive_explains_what_it_cannot_do(store: Store, admin_for: Any) -> None:
    delivered_id, _ = await seed(store)
    admin = await admin_for(make_state(store))
    status, body = await admin.post(f"/api/deliveries/{delivered_id}/redrive")
    assert status == 409 and "is delivered" in body["error"]
    assert (await admin.post("/api/deliveries/99999/redrive"))[0] == 404
    assert (await admin.post("/api/deliveries/abc/redrive"))[0] == 400


async def test_readiness_reports_the_store_and_parts(store: Store, admin_for: Any) -> None:
    state = make_state(store)
    reasons: list[str] = ["poller: first cycle not done"]
    state.readiness = [lambda: reasons]
    admin = await admin_for(state)
    status, body = await admin.get("/readyz")
    assert status == 503 and body["reasons"] == ["poller: first cycle not done"]
    reasons.clear()
    assert (await admin.get("/readyz"))[0] == 200
    await store.close()
    status, body = await admin.get("/readyz")
    assert status == 503 and body["reasons"] == ["store: not reachable"]


async def test_triggers_list_what_the_sources_report(store: Store, admin_for: Any) -> None:
    from sftriggerd.sources.status import TriggerStatus

    status = TriggerStatus(name="accounts", mode="polling", mode_reason="configured: mode polling")
    status.state = "running"
    status.checkpoint = "2026-11-28T10:00:00.000Z 001A"
    state = make_state(store)
    state.trigger_status = lambda: [status.as_json()]
    admin = await admin_for(state)
    code, body = await admin.get("/api/triggers")
    assert code == 200
    assert body == [
        {
            "name": "accounts",
            "mode": "polling",
            "mode_reason": "configured: mode polling",
            "transport": None,
            "state": "running",
            "checkpoint": "2026-11-28T10:00:00.000Z 001A",
            "lag_s": None,
            "last_error": None,
        }
    ]
