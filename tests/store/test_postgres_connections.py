"""What every connection of the PostgreSQL store carries: TCP keepalives, so a connection
whose server vanished silently is ended by the kernel and the wake-up listener reconnects
(read back from the socket itself: libpq sets them there, the server never sees them), and
the URL's own settings win over ours."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import AsyncConnection

from sftriggerd.store.postgres import PostgresStore
from sftriggerd.store.postgres.connecting import KEEPALIVES, connection_options


def socket_keepalives(conn: AsyncConnection[Any]) -> tuple[int, int, int, int]:
    """SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT of the connection's socket."""
    with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
        return (
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
        )


OURS = (1, KEEPALIVES["keepalives_idle"], KEEPALIVES["keepalives_interval"], 3)


async def test_its_own_connections_and_the_pools_probe_an_idle_server(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        own = await store.connect()  # the listener's and the migrations' kind
        try:
            assert socket_keepalives(own) == OURS
            assert own.info.get_parameters()["keepalives_idle"] == "30"
        finally:
            await own.close()

        async def pooled(conn: AsyncConnection[Any]) -> tuple[int, int, int, int]:
            return socket_keepalives(conn)

        # Through the store's one way to a pooled connection: no public operation hands one out.
        assert await store._run(pooled) == OURS
    finally:
        await store.close()


async def test_keepalives_the_url_sets_are_kept(postgres_url: str) -> None:
    store = PostgresStore(postgres_url + "?keepalives_idle=45&keepalives_count=7")
    await store.open()
    try:
        own = await store.connect()
        try:
            assert socket_keepalives(own) == (1, 45, 10, 7)
        finally:
            await own.close()
    finally:
        await store.close()


async def test_a_url_that_turns_keepalives_off_has_them_off(postgres_url: str) -> None:
    store = PostgresStore(postgres_url + "?keepalives=0")
    await store.open()
    try:
        own = await store.connect()
        try:
            assert socket_keepalives(own)[0] == 0
        finally:
            await own.close()
    finally:
        await store.close()


_settings = st.dictionaries(
    st.sampled_from([*KEEPALIVES, "connect_timeout", "application_name"]),
    st.integers(min_value=0, max_value=10_000).map(str),
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(given_settings=_settings, as_url=st.booleans())
def test_options_add_only_what_the_url_leaves_out(
    given_settings: dict[str, str], as_url: bool
) -> None:
    if as_url:
        query = "&".join(f"{key}={value}" for key, value in given_settings.items())
        url = "postgresql://u@db.internal:5432/x" + (f"?{query}" if query else "")
    else:
        url = " ".join(["host=db.internal", *(f"{k}={v}" for k, v in given_settings.items())])
    options = connection_options(url)
    assert options["autocommit"] is True
    assert not set(options) & set(given_settings)  # never over the URL's own
    assert set(KEEPALIVES) <= set(options) | set(given_settings)
    assert "connect_timeout" in set(options) | set(given_settings)


@pytest.mark.parametrize("url", ["postgresql://u@h:99999999/x", "host='unterminated", "\x00"])
def test_options_for_an_unreadable_url_still_come(url: str) -> None:
    assert connection_options(url) == {"autocommit": True, "connect_timeout": 10, **KEEPALIVES}
