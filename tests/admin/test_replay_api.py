"""Resend, bulk redrive and rewind through the admin API: real HTTP, a real SQLite store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sftriggerd.admin.state import AdminState
from sftriggerd.config import parse_settings
from sftriggerd.metrics import Metrics
from sftriggerd.sources.restartable import RestartableSource
from sftriggerd.store.base import Store
from sftriggerd.store.records import Checkpoint
from sftriggerd.store.sqlite import SqliteStore
from tests.admin.test_api import seed
from tests.support.admin import Serve
from tests.unit.test_restartable import Builds

TOKEN = "s3cret-admin"
CONFIG = f"""
salesforce: {{auth: {{client_id: c, client_secret: s, username: u, password: p}}}}
server: {{listen: "127.0.0.1:0", admin_token: "{TOKEN}"}}
triggers:
  - {{name: accounts, object: Account, mode: streaming}}
  - {{name: polled, object: Contact, mode: polling}}
endpoints:
  - {{name: hook, url: "http://127.0.0.1:9/h", secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}}
"""


def make_state(store: Store) -> AdminState:
    return AdminState(settings=parse_settings(CONFIG, environ={}), metrics=Metrics(), store=store)


class Admin:
    def __init__(self, base: str, http: aiohttp.ClientSession) -> None:
        self.base, self.http = base, http

    async def post(
        self,
        path: str,
        body: Any = None,
        token: str | None = TOKEN,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        headers = {"Content-Type": content_type}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = b"" if body is None else json.dumps(body).encode()
        async with self.http.post(self.base + path, headers=headers, data=data) as response:
            return response.status, await response.json()


@pytest.fixture
async def admin_for(serve: Serve) -> AsyncIterator[Any]:
    async with aiohttp.ClientSession() as http:

        async def start(state: AdminState) -> Admin:
            return Admin(await serve(state), http)

        yield start


async def test_resend_one_delivered_delivery_then_find_it_pending(
    store: Store, admin_for: Any
) -> None:
    delivered, dead = await seed(store)
    state = make_state(store)
    notified: list[str] = []
    state.on_redrive = notified.append
    admin = await admin_for(state)
    assert (await admin.post(f"/api/deliveries/{delivered}/resend", token=None))[0] == 401
    assert (await admin.post(f"/api/deliveries/{delivered}/resend", content_type="text/plain"))[
        0
    ] == 415
    status, body = await admin.post(f"/api/deliveries/{delivered}/resend")
    assert (status, body) == (202, {"id": delivered, "status": "pending", "resent": True})
    assert notified == ["hook"]
    status, body = await admin.post(f"/api/deliveries/{delivered}/resend")
    assert status == 200 and body["resent"] is False and "already pending" in body["detail"]
    assert (await store.get_delivery(delivered)).status == "pending"  # type: ignore[union-attr]
    assert (await admin.post("/api/deliveries/999/resend"))[0] == 404
    assert (await admin.post("/api/deliveries/x1/resend"))[0] == 400
    assert (await admin.post(f"/api/deliveries/{dead}/resend"))[0] == 202  # dead ones too


async def test_bulk_redrive_and_resend_by_endpoint_status_and_time(
    store: Store, admin_for: Any
) -> None:
    await seed(store)  # one delivered, one dead, one in flight, all made just now
    admin = await admin_for(make_state(store))
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    status, body = await admin.post("/api/deliveries/redrive", {"endpoint": "hook", "since": later})
    assert (status, body) == (200, {"endpoint": "hook", "requeued": 0, "already_pending": 0})
    window = {"endpoint": "hook", "status": "dead", "since": "1h", "until": later}
    status, body = await admin.post("/api/deliveries/redrive", window)
    assert (status, body) == (200, {"endpoint": "hook", "requeued": 1, "already_pending": 1})
    assert (await admin.post("/api/deliveries/redrive", window))[1]["requeued"] == 0
    status, body = await admin.post("/api/deliveries/resend", {"endpoint": "hook"})
    assert (status, body) == (200, {"endpoint": "hook", "requeued": 1, "already_pending": 2})
    status, body = await admin.post("/api/deliveries/resend", {"endpoint": "hook"})
    assert (status, body) == (200, {"endpoint": "hook", "requeued": 0, "already_pending": 3})


@pytest.mark.parametrize(
    ("path", "body", "status", "says"),
    [
        ("redrive", {"endpoint": "nope"}, 404, "no endpoint named 'nope'"),
        ("redrive", {}, 400, "needs an endpoint"),
        ("redrive", {"endpoint": "hook", "status": "delivered"}, 400, "takes status dead"),
        ("resend", {"endpoint": "hook", "status": "pending"}, 400, "dead or delivered"),
        ("resend", {"endpoint": "hook", "since": "yesterday"}, 400, "is not a time"),
        ("resend", {"endpoint": "hook", "since": "1h", "until": "2h"}, 400, "before --until"),
        ("resend", {"endpoint": "hook", "limit": 5}, 400, "unknown keys 'limit'"),
        ("resend", {"endpoint": 5}, 400, "must be a string"),
        ("resend", [1], 400, "JSON object"),
    ],
)
async def test_bulk_requests_that_cannot_be_done_say_why(
    store: Store, admin_for: Any, path: str, body: Any, status: int, says: str
) -> None:
    admin = await admin_for(make_state(store))
    answer = await admin.post(f"/api/deliveries/{path}", body)
    assert answer[0] == status and says in answer[1]["error"]


async def test_rewind_refused_outside_retention_and_for_unknown_triggers(
    store: Store, admin_for: Any
) -> None:
    admin = await admin_for(make_state(store))
    status, body = await admin.post("/api/triggers/accounts/rewind", {"to": "4d"})
    assert status == 422 and "outside Salesforce's retention" in body["error"]
    status, body = await admin.post("/api/triggers/polled/rewind", {"to": "42"})
    assert status == 422 and "polling has no replay ids" in body["error"]
    assert (await admin.post("/api/triggers/nope/rewind", {"to": "1h"}))[0] == 404
    assert (await admin.post("/api/triggers/accounts/rewind", {}))[0] == 400
    assert (await admin.post("/api/triggers/accounts/rewind", {"to": "1", "resend": 1}))[0] == 400
    assert (await admin.post("/api/triggers/accounts/rewind", {"to": "1"}, token=None))[0] == 401
    assert await store.checkpoint("accounts") is None  # nothing was written


async def test_a_polled_trigger_rewinds_to_any_past_time(store: Store, admin_for: Any) -> None:
    admin = await admin_for(make_state(store))
    status, body = await admin.post("/api/triggers/polled/rewind", {"to": "2020-01-01T00:00:00Z"})
    assert status == 200 and body["restarted"] is False and body["resent"] is None
    saved = await store.checkpoint("polled")
    assert saved is not None and saved.position["watermark"] == "2020-01-01T00:00:00.000000Z"


async def test_rewind_while_running_restarts_the_source_around_the_change(
    store: Store, admin_for: Any
) -> None:
    position = {"replay_id": 90, "channel": "/data/AccountChangeEvent"}
    await store.ingest("accounts", [], Checkpoint(trigger="accounts", position=position))
    builds = Builds()
    source = RestartableSource("accounts", builds)
    stopping = asyncio.Event()
    running = asyncio.create_task(source.run(stopping))
    await builds.made[0].started.wait()
    state = make_state(store)
    state.sources = {"accounts": source}
    admin = await admin_for(state)
    status, body = await admin.post("/api/triggers/accounts/rewind", {"to": "12", "resend": True})
    assert status == 200, body
    assert body["restarted"] is True and body["to"] == "replay id 12"
    assert body["resent"] == {"requeued": 0, "already_pending": 0}
    await asyncio.wait_for(builds.made[1].started.wait(), 5)
    assert builds.log == ["start 0", "stop 0", "start 1"]
    saved = await store.checkpoint("accounts")
    assert saved is not None and saved.position["replay_id"] == 12
    stopping.set()
    await asyncio.wait_for(running, 5)


async def test_a_store_failure_mid_rewind_is_503_and_the_source_runs_on(
    tmp_path: Path, admin_for: Any
) -> None:
    store = SqliteStore(tmp_path / "state.db")
    await store.open()
    builds = Builds()
    source = RestartableSource("accounts", builds)
    stopping = asyncio.Event()
    running = asyncio.create_task(source.run(stopping))
    await builds.made[0].started.wait()
    state = make_state(store)
    state.sources = {"accounts": source}
    admin = await admin_for(state)
    await store.close()  # every store call now fails
    status, body = await admin.post("/api/triggers/accounts/rewind", {"to": "1h", "resend": True})
    assert status == 503 and body["error"]
    # The same source (its position unchanged) runs again; the next rewind, with the store
    # back, goes through.
    async with asyncio.timeout(5):
        while builds.log.count("start 0") < 2:
            await asyncio.sleep(0.01)
    await store.open()
    status, body = await admin.post("/api/triggers/accounts/rewind", {"to": "1h"})
    assert status == 200 and body["restarted"] is True
    await asyncio.wait_for(builds.made[1].started.wait(), 5)
    stopping.set()
    await asyncio.wait_for(running, 5)
    await store.close()
