"""`GET /api/deliveries/{id}` and the detail page, over real HTTP on a real store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from sftriggerd.store.base import Store
from sftriggerd.store.records import AttemptTrace, Checkpoint, Dead, NewEvent, Retry
from tests.admin.test_status_page import NASTY, page_state
from tests.support.admin import Serve

BODY = {"type": "record.updated", "id": "evt_1", "data": {"Name": "Acme <b>"}}


async def failing_delivery(store: Store) -> int:
    """One delivery of `hook` that failed once (503, answer kept) and then died (410)."""
    now = datetime.now(UTC)
    event = NewEvent(
        event_id="evt_1",
        record_id="001",
        occurred_at=now,
        body=json.dumps(BODY).encode(),
        endpoints=("hook",),
    )
    await store.ingest("accounts", [event], Checkpoint(trigger="accounts", position={}))
    [claim] = await store.claim_due("hook", 1, timedelta(seconds=30))
    trace = AttemptTrace(started_at=now, duration_ms=12, answer=f"busy {NASTY}")
    retry = Retry(timedelta(0), status=503, error="HTTP 503: busy", trace=trace)
    await store.record_outcome(claim, retry)
    [claim] = await store.claim_due("hook", 1, timedelta(seconds=30))
    trace = AttemptTrace(started_at=now + timedelta(seconds=1), duration_ms=7, answer="")
    await store.record_outcome(claim, Dead(status=410, error="HTTP 410", trace=trace))
    return claim.delivery_id


async def get(base: str, path: str) -> tuple[aiohttp.ClientResponse, Any]:
    async with aiohttp.ClientSession() as http, http.get(base + path) as response:
        text = await response.text()
        is_json = response.content_type == "application/json"
        return response, json.loads(text) if is_json else text


async def test_gives_the_delivery_its_event_and_every_attempt(store: Store, serve: Serve) -> None:
    delivery_id = await failing_delivery(store)
    base = await serve(page_state(store))
    response, detail = await get(base, f"/api/deliveries/{delivery_id}")
    assert response.status == 200
    _, [listed] = await get(base, "/api/deliveries")
    assert {key: detail[key] for key in listed} == listed  # the list's fields, as listed
    assert set(detail) == {*listed, "event", "attempt_history"}
    assert detail["event"] == BODY
    first, second = detail["attempt_history"]
    assert {"at", "duration_ms", "status", "error", "answer"} <= set(first)
    assert (first["status"], first["duration_ms"], first["error"]) == (503, 12, "HTTP 503: busy")
    assert first["answer"] == f"busy {NASTY}" and first["next_attempt_at"] is not None
    assert (second["status"], second["duration_ms"], second["next_attempt_at"]) == (410, 7, None)
    assert first["at"] < second["at"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/deliveries/999", 404),
        ("/api/deliveries/abc", 400),
        ("/api/deliveries/%D9%A3", 400),  # an Arabic-Indic three: a digit, not ours
        ("/api/deliveries/1_000", 400),
        ("/api/deliveries/99999999999999999999", 400),
        ("/deliveries/999", 404),
        ("/deliveries/x", 400),
    ],
)
async def test_unknown_and_malformed_ids_answer_json(
    store: Store, serve: Serve, path: str, status: int
) -> None:
    await failing_delivery(store)
    base = await serve(page_state(store))
    response, body = await get(base, path)
    assert response.status == status and response.content_type == "application/json"
    assert body["error"]


async def test_the_page_escapes_what_the_receiver_answered(store: Store, serve: Serve) -> None:
    delivery_id = await failing_delivery(store)
    base = await serve(page_state(store))
    response, page = await get(base, f"/deliveries/{delivery_id}")
    assert response.status == 200 and response.content_type == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert NASTY not in page and "&lt;script&gt;" in page
    assert "Acme &lt;b&gt;" in page and "<script" not in page
    assert page.count('<tr data-attempt="') == 2


async def test_the_status_page_links_each_failure_to_its_detail(store: Store, serve: Serve) -> None:
    delivery_id = await failing_delivery(store)
    base = await serve(page_state(store))
    _, page = await get(base, "/")
    # failures, endpoint, latest deliveries
    assert page.count(f'<a href="deliveries/{delivery_id}">') == 3
