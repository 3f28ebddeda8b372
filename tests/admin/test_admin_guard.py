"""Mutations need a JSON content type, and are refused beyond loopback without a token (issue 13,
item 11): over real HTTP, on a real store."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from sftriggerd.admin.guard import host_of, is_loopback_host, mutations_open
from sftriggerd.admin.state import AdminState
from sftriggerd.config import parse_settings
from sftriggerd.metrics import Metrics
from sftriggerd.store.base import Store
from tests.admin.test_api import admin_for, seed

__all__ = ["admin_for"]

CONFIG = """
salesforce: {auth: {client_id: c, client_secret: s, username: u, password: p}}
server: {listen: "%s", admin_token: "%s"}
"""


def state_for(store: Store, listen: str, token: str = "") -> AdminState:
    settings = parse_settings(CONFIG % (listen, token), environ={})
    return AdminState(settings=settings, metrics=Metrics(), store=store)


@pytest.mark.parametrize("listen", ["0.0.0.0:8080", "[::]:8080", "10.1.2.3:8080", "admin:80"])
async def test_no_token_beyond_loopback_refuses_mutations(
    store: Store, admin_for: Any, listen: str
) -> None:
    _, dead_id = await seed(store)
    with capture_logs() as logs:
        admin = await admin_for(state_for(store, listen))
    [warning] = [line for line in logs if line["event"] == "admin_token_missing"]
    assert warning["log_level"] == "warning"
    assert "server.admin_token" in warning["detail"]
    assert "SFTRIGGERD_ADMIN_TOKEN" in warning["detail"]
    status, body = await admin.post(f"/api/deliveries/{dead_id}/redrive")
    assert status == 403 and "admin_token" in body["error"]
    row = await store.get_delivery(dead_id)
    assert row is not None and row.status == "dead"
    assert (await admin.get("/api/deliveries"))[0] == 200  # reads stay open


async def test_a_token_beyond_loopback_allows_mutations(store: Store, admin_for: Any) -> None:
    _, dead_id = await seed(store)
    with capture_logs() as logs:
        admin = await admin_for(state_for(store, "0.0.0.0:8080", token="t0ken-long"))
    assert not [line for line in logs if line["event"] == "admin_token_missing"]
    assert (await admin.post(f"/api/deliveries/{dead_id}/redrive"))[0] == 401
    assert (await admin.post(f"/api/deliveries/{dead_id}/redrive", "t0ken-long"))[0] == 202


@pytest.mark.parametrize("listen", ["127.0.0.1:8080", "[::1]:8080", "localhost:8080"])
async def test_loopback_without_token_allows_mutations(
    store: Store, admin_for: Any, listen: str
) -> None:
    _, dead_id = await seed(store)
    with capture_logs() as logs:
        admin = await admin_for(state_for(store, listen))
    assert not [line for line in logs if line["event"] == "admin_token_missing"]
    assert (await admin.post(f"/api/deliveries/{dead_id}/redrive"))[0] == 202


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""],
)
async def test_a_mutation_needs_a_json_content_type(
    store: Store, admin_for: Any, content_type: str
) -> None:
    """The content types a cross-site form or a no-cors fetch can send are all refused."""
    _, dead_id = await seed(store)
    admin = await admin_for(state_for(store, "127.0.0.1:8080"))
    status, body = await admin.post(f"/api/deliveries/{dead_id}/redrive", content_type=content_type)
    assert status == 415 and "application/json" in body["error"]
    row = await store.get_delivery(dead_id)
    assert row is not None and row.status == "dead"
    charset = "application/json; charset=utf-8"
    assert (await admin.post(f"/api/deliveries/{dead_id}/redrive", content_type=charset))[0] == 202


async def test_the_content_type_is_checked_before_the_token(store: Store, admin_for: Any) -> None:
    _, dead_id = await seed(store)
    admin = await admin_for(state_for(store, "0.0.0.0:8080", token="t0ken-long"))
    status, _ = await admin.post(f"/api/deliveries/{dead_id}/redrive", "t0ken-long", "text/plain")
    assert status == 415


def test_loopback_hosts() -> None:
    assert all(map(is_loopback_host, ["127.0.0.1", "127.8.9.10", "::1", "localhost", "LocalHost"]))
    for host in ["0.0.0.0", "::", "192.168.1.4", "fe80::1%eth0", "sftriggerd.internal", ""]:
        assert not is_loopback_host(host), host


@given(host=st.text(max_size=60))
def test_any_host_text_is_decided_without_error(host: str) -> None:
    assert isinstance(is_loopback_host(host), bool)


def test_mutations_are_open_only_beyond_loopback_without_token() -> None:
    def server(listen: str, token: str = "") -> Any:
        return parse_settings(CONFIG % (listen, token), environ={}).server

    assert mutations_open(server("0.0.0.0:1"))
    assert not mutations_open(server("0.0.0.0:1", "t0ken-long"))
    assert not mutations_open(server("127.0.0.1:1"))


async def test_a_rebound_name_cannot_mutate_without_a_token(store: Store, admin_for: Any) -> None:
    """A page at evil.example whose name now resolves to 127.0.0.1 is same-origin to the
    browser, JSON and all; only the Host it sends gives it away."""
    _, dead_id = await seed(store)
    admin = await admin_for(state_for(store, "127.0.0.1:8080"))
    path = f"{admin.base}/api/deliveries/{dead_id}/redrive"
    headers = {"Content-Type": "application/json", "Host": "evil.example:8080"}
    async with admin.http.post(path, headers=headers, data=b"{}") as response:
        assert response.status == 403 and "Host" in (await response.json())["error"]
    row = await store.get_delivery(dead_id)
    assert row is not None and row.status == "dead"
    headers["Host"] = "localhost:8080"
    async with admin.http.post(path, headers=headers, data=b"{}") as response:
        assert response.status == 202


def test_host_headers() -> None:
    assert host_of("127.0.0.1:8080") == "127.0.0.1"
    assert host_of("[::1]:8080") == "::1"
    assert host_of("localhost") == "localhost"
    assert host_of("evil.example:80") == "evil.example"
    assert host_of("::1") == "::1"


@given(header=st.text(max_size=40))
def test_any_host_header_is_read_without_error(header: str) -> None:
    assert isinstance(is_loopback_host(host_of(header)), bool)
