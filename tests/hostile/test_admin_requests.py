"""Hostile admin requests (issue 13, item 12): whatever a client sends, the answer is 2xx, 400,
404, 405, 409 or 415 with a JSON body, 503 when the store fails, and never a 500.

The property runs against the real aiohttp app over real HTTP on a real SQLite store. The
server runs on its own event loop in a thread, so hypothesis's synchronous examples can send
raw request targets (any bytes, percent-encoded or not) with http.client.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sftriggerd.admin.server import AdminServer, build_admin_app
from sftriggerd.store.records import Checkpoint, PoisonEvent
from sftriggerd.store.sqlite import SqliteStore
from tests.admin.test_api import admin_for, make_state, seed

__all__ = ["admin_for"]

ANSWERS = {200, 202, 400, 404, 405, 409, 415}


class ThreadedAdmin:
    """The admin app on a real store, served from a loop of its own."""

    def __init__(self, path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.store = SqliteStore(path)
        self.port = 0
        self.server: AdminServer | None = None

    def call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    async def _start(self) -> None:
        await self.store.open()
        await seed(self.store)
        poison = PoisonEvent("accounts", "not JSON", "{oops")
        checkpoint = Checkpoint(trigger="accounts", position={})
        await self.store.ingest("accounts", [], checkpoint, poison=[poison])
        self.server = AdminServer(build_admin_app(make_state(self.store)), "127.0.0.1", 0)
        await self.server.__aenter__()
        self.port = self.server.bound_port

    async def _stop(self) -> None:
        if self.server is not None:
            await self.server.__aexit__(None, None, None)
        await self.store.close()

    def __enter__(self) -> ThreadedAdmin:
        self.thread.start()
        self.call(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        self.call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def request(self, method: str, target: str, content_type: str = "") -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            headers = {"Content-Type": content_type} if content_type else {}
            connection.request(
                method, target, body=b"{}" if method == "POST" else None, headers=headers
            )
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedAdmin]:
    with ThreadedAdmin(tmp_path_factory.mktemp("admin") / "state.db") as running:
        yield running


def encoded(text: str) -> str:
    # Lone surrogates go out as the bytes they would be: the server must cope with those too.
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


raw_bytes = st.binary(max_size=30).map(lambda data: "".join(f"%{b:02X}" for b in data))
value = st.one_of(
    st.text(max_size=30).map(encoded),
    raw_bytes,
    st.sampled_from(["²", "٣", "1_0", "+5", " 7", "1e3", "0x10", "9" * 1000, "-1"]).map(encoded),
    st.integers().map(str),
)
names = st.sampled_from(["limit", "status", "endpoint", "trigger", "id", "fragment", "x"])
query = st.lists(st.tuples(names, value), max_size=4).map(
    lambda pairs: "&".join(f"{name}={text}" for name, text in pairs)
)
GET_PATHS = ["/api/deliveries", "/api/poison", "/api/triggers", "/api/parts", "/readyz", "/"]


def assert_answered(status: int, body: bytes, target: str) -> None:
    assert status in ANSWERS, (status, target, body[:200])
    if status >= 400:
        assert json.loads(body)["error"], target


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(GET_PATHS), query=query)
def test_any_query_string_gets_a_json_answer_never_a_500(
    admin: ThreadedAdmin, path: str, query: str
) -> None:
    target = f"{path}?{query}"
    status, body = admin.request("GET", target)
    assert_answered(status, body, target)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(delivery_id=value, content_type=st.sampled_from(["application/json", "text/plain", ""]))
def test_any_redrive_id_gets_a_json_answer_never_a_500(
    admin: ThreadedAdmin, delivery_id: str, content_type: str
) -> None:
    target = f"/api/deliveries/{delivery_id or '0'}/redrive"
    status, body = admin.request("POST", target, content_type)
    assert_answered(status, body, target)


@pytest.mark.parametrize(
    "target",
    [
        "/api/deliveries?limit=%C2%B2",
        "/api/deliveries?limit=%D9%A3",
        "/api/deliveries?limit=1_0",
        "/api/poison?limit=%C2%B2",
        "/api/deliveries?limit=%EF%BC%95",
    ],
)
def test_digits_that_are_not_ascii_are_400(admin: ThreadedAdmin, target: str) -> None:
    status, body = admin.request("GET", target)
    assert status == 400 and json.loads(body)["error"]


@pytest.mark.parametrize("delivery_id", ["%C2%B2", "9" * 40, "%D9%A3"])
def test_redrive_of_an_id_that_is_not_a_number_is_400(
    admin: ThreadedAdmin, delivery_id: str
) -> None:
    status, body = admin.request(
        "POST", f"/api/deliveries/{delivery_id}/redrive", "application/json"
    )
    assert status == 400 and "id" in json.loads(body)["error"]


def test_unknown_paths_and_methods_are_json(admin: ThreadedAdmin) -> None:
    assert_answered(*admin.request("GET", "/api/nothing"), "/api/nothing")
    status, body = admin.request("DELETE", "/api/deliveries", "application/json")
    assert status in (403, 405) or status in ANSWERS
    assert json.loads(body)["error"]


async def test_a_store_failure_is_503_never_500(tmp_path: Path, admin_for: Any) -> None:
    store = SqliteStore(tmp_path / "state.db")
    await store.open()
    _, dead_id = await seed(store)
    admin = await admin_for(make_state(store))
    await store.close()  # every store call now raises StoreError
    for path in ["/api/deliveries", "/api/poison"]:
        status, body = await admin.get(path)
        assert status == 503 and body["error"], path
    status, body = await admin.post(f"/api/deliveries/{dead_id}/redrive")
    assert status == 503 and body["error"]
    assert (await admin.get("/readyz"))[0] == 503
