"""Receivers that answer garbage: the attempt history keeps a readable, bounded excerpt, and
the admin API and the detail page still answer. Real receiver, SQLite, dispatcher, admin."""

from __future__ import annotations

import json

import aiohttp
import pytest
from aiohttp import web

from sftriggerd.admin.server import AdminServer, build_admin_app
from sftriggerd.delivery import Dispatcher
from sftriggerd.delivery.outcome import ANSWER_CHARS
from sftriggerd.metrics import Metrics
from sftriggerd.store.base import Store
from tests.admin.test_status_page import page_state
from tests.delivery.rig import endpoint, enqueue, new_event, row, running
from tests.support.receiver import Arrival, Receiver
from tests.support.waiting import eventually

ANSWERS = {
    "binary": b"\x00\xff\xfe<script>\x00" * 800,
    "broken_utf8": "caf\u00e9 ".encode() * 300 + b"\xc3",
    "json_lookalike": b'{"error": "\\ud800 \\"}' + b"\n" * 3000,
    "bidi_and_controls": "\u202e\u0007\u001b[31mred\u2028".encode() * 200,
}


@pytest.mark.parametrize("kind", sorted(ANSWERS))
async def test_garbage_answers_are_kept_readable(
    store: Store, http: aiohttp.ClientSession, receiver: Receiver, kind: str
) -> None:
    async def garbage(arrival: Arrival) -> web.StreamResponse:
        return web.Response(status=500, body=ANSWERS[kind])

    receiver.respond = garbage
    hook = endpoint(receiver.url, schedule=("1h",))
    async with running(Dispatcher(store, [hook], Metrics(), jitter=lambda: 0.5)):
        await enqueue(store, new_event("evt_1"))
        await eventually(lambda: _attempted(store))
    delivery_id = (await row(store, "evt_1")).id

    server = AdminServer(build_admin_app(page_state(store)), "127.0.0.1", 0)
    async with server:
        base = f"http://127.0.0.1:{server.bound_port}"
        async with http.get(f"{base}/api/deliveries/{delivery_id}") as response:
            assert response.status == 200
            detail = json.loads(await response.text())
        async with http.get(f"{base}/deliveries/{delivery_id}") as response:
            assert response.status == 200
            page = await response.text()
    [attempt] = detail["attempt_history"]
    answer = attempt["answer"]
    assert attempt["status"] == 500 and isinstance(answer, str)
    assert 0 < len(answer) <= ANSWER_CHARS
    answer.encode("utf-8")  # text: no lone surrogate made it through
    assert "<script>" not in page


async def _attempted(store: Store) -> bool:
    delivery = await row(store, "evt_1")
    detail = await store.get_delivery_detail(delivery.id)
    return detail is not None and len(detail.attempts) == 1
