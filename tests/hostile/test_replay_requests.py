"""Hostile resend, bulk redrive and rewind requests: whatever body or name a client sends, the
answer is 200, 202, 400, 404, 415 or 422 with a JSON body, never a 500; the real app over real
HTTP on a real SQLite store."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sftriggerd.admin.server import AdminServer, build_admin_app
from tests.admin.test_api import seed
from tests.admin.test_replay_api import TOKEN, make_state
from tests.hostile.test_admin_requests import ThreadedAdmin, encoded

ANSWERS = {200, 202, 400, 404, 415, 422}


class ReplayAdmin(ThreadedAdmin):
    async def _start(self) -> None:
        await self.store.open()
        await seed(self.store)
        self.server = AdminServer(build_admin_app(make_state(self.store)), "127.0.0.1", 0)
        await self.server.__aenter__()
        self.port = self.server.bound_port

    def send(self, target: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Content-Type": content_type, "Authorization": f"Bearer {TOKEN}"}
        try:
            connection.request("POST", target, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplayAdmin]:
    with ReplayAdmin(tmp_path_factory.mktemp("replay") / "state.db") as running:
        yield running


moments = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["1h", "72h1s", "9" * 400 + "d", "0001-01-01T00:00:00+01:00", "9" * 5000]),
    st.sampled_from(["2026-12-01T10:00:00", "9999-12-31T23:59:59Z", "1" * 18, "1" * 19]),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
field_values = st.one_of(moments, json_values, st.sampled_from(["hook", "dead", "delivered"]))
keys = st.sampled_from(["endpoint", "status", "since", "until", "to", "resend", "x"])
bodies = st.one_of(
    st.dictionaries(keys, field_values, max_size=5).map(lambda body: json.dumps(body).encode()),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=40),
)
paths = st.one_of(
    st.sampled_from(["/api/deliveries/redrive", "/api/deliveries/resend"]),
    st.sampled_from(["accounts", "polled", "nope"]).map(lambda n: f"/api/triggers/{n}/rewind"),
    st.text(min_size=1, max_size=20).map(lambda n: f"/api/triggers/{encoded(n)}/rewind"),
    st.text(min_size=1, max_size=20).map(lambda n: f"/api/deliveries/{encoded(n)}/resend"),
)


def assert_answered(status: int, body: bytes, target: str) -> None:
    assert status in ANSWERS, (status, target, body[:200])
    if status >= 400:
        assert json.loads(body)["error"], target


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=paths, body=bodies, content_type=st.sampled_from(["application/json", "text/plain"]))
def test_any_body_or_name_gets_a_json_answer_never_a_500(
    admin: ReplayAdmin, path: str, body: bytes, content_type: str
) -> None:
    status, answer = admin.send(path, body, content_type)
    assert_answered(status, answer, path)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"to": "9" * 5000}, 422),
        ({"to": "\ud800"}, 422),
        ({"to": "1", "resend": "yes"}, 400),
        ({"to": ["1"]}, 400),
    ],
)
def test_rewind_bodies_that_cannot_be_done(admin: ReplayAdmin, body: Any, status: int) -> None:
    raw = json.dumps(body).encode()
    answer = admin.send("/api/triggers/accounts/rewind", raw, "application/json")
    assert answer[0] == status and json.loads(answer[1])["error"]
