"""Hostile review: a receiver's answer never carries an endpoint's secret header value into
`last_error` (shown by the admin API and the status page), not even part of it. Real local
receiver, real SQLite store, the real dispatcher."""

from __future__ import annotations

from aiohttp import web

from sftriggerd.delivery import Dispatcher
from sftriggerd.delivery.sender import BODY_PREFIX_BYTES
from sftriggerd.metrics import Metrics
from sftriggerd.store.base import Store
from tests.delivery.rig import MS, endpoint, running
from tests.hostile.test_endpoints import _attempted_each, enqueue, rows, serving
from tests.support.waiting import eventually

TOKEN = "rcv-4f9a1c7e2b8d4e6f9a0b1c2d3e4f5a6b"


async def test_a_secret_header_echoed_across_the_read_limit_does_not_leak(
    store: Store,
) -> None:
    """The receiver echoes the request's Authorization header after a run of whitespace, so
    the read limit cuts the token in two: the part that was read is still a secret."""

    async def echo(request: web.Request) -> web.Response:
        echoed = request.headers["Authorization"]
        padding = " " * (BODY_PREFIX_BYTES - len("Bearer ") - len(TOKEN) // 2)
        return web.Response(status=500, text=padding + echoed)

    async with serving(echo) as url:
        hook = endpoint(url, headers={"Authorization": f"Bearer {TOKEN}"}, ordering="none")
        dispatcher = Dispatcher(store, [hook], Metrics(), shutdown_grace=MS)
        async with running(dispatcher):
            await enqueue(store, "hook", "a", to=dispatcher)
            await eventually(lambda: _attempted_each(store, "hook", 1))
        [row] = await rows(store, "hook")
    assert row.last_status == 500 and row.last_error is not None
    assert TOKEN[: len(TOKEN) // 2] not in row.last_error
    assert TOKEN[:8] not in row.last_error
