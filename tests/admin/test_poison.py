"""Poison events are visible: GET /api/poison and the status page's section, over real HTTP on
a real store (issue 13, item 4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sftriggerd.store.base import Store
from sftriggerd.store.records import Checkpoint, PoisonEvent
from tests.admin.test_api import admin_for, make_state
from tests.admin.test_status_page import NASTY, page_for, page_state, row

__all__ = ["admin_for", "page_for"]


async def keep_poison(store: Store, trigger: str, *poison: PoisonEvent) -> None:
    await store.ingest(trigger, [], Checkpoint(trigger=trigger, position={}), poison=poison)


async def test_poison_is_listed_newest_first_and_filtered(store: Store, admin_for: Any) -> None:
    await keep_poison(store, "accounts", PoisonEvent("accounts", "not JSON", "{oops"))
    await keep_poison(store, "cases", PoisonEvent("cases", "wildcard record id", '{"id":"001*"}'))
    admin = await admin_for(make_state(store))
    status, listed = await admin.get("/api/poison")
    assert status == 200
    assert [(p["trigger"], p["reason"], p["message"]) for p in listed] == [
        ("cases", "wildcard record id", '{"id":"001*"}'),
        ("accounts", "not JSON", "{oops"),
    ]
    assert set(listed[0]) == {"trigger", "reason", "received_at", "message"}
    assert listed[0]["received_at"].endswith("Z")
    assert [p["trigger"] for p in (await admin.get("/api/poison?trigger=accounts"))[1]] == [
        "accounts"
    ]
    assert len((await admin.get("/api/poison?limit=1"))[1]) == 1
    assert (await admin.get("/api/poison?trigger=nobody"))[1] == []


async def test_bad_poison_queries_are_400(store: Store, admin_for: Any) -> None:
    admin = await admin_for(make_state(store))
    for query in ["limit=²", "limit=0", "limit=1001", "limit=-1", "trigger=" + "x" * 201]:
        status, body = await admin.get(f"/api/poison?{query}")
        assert status == 400 and body["error"], query


async def test_the_page_shows_poison_escaped_and_cut(store: Store, page_for: Callable) -> None:
    long_message = NASTY + "x" * 5000
    await keep_poison(store, "accounts", PoisonEvent("accounts", f"reason {NASTY}", long_message))
    fetch = await page_for(page_state(store))
    response, body = await fetch()
    assert response.status == 200
    cells = row(body, "data-poison", "accounts")
    assert NASTY not in body
    assert "reason &lt;script&gt;" in cells
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;xxx" in cells
    assert "x" * 300 not in cells and "…" in cells  # the message is cut
    assert "<time" in cells  # when it came


async def test_no_poison_says_so(store: Store, page_for: Callable) -> None:
    fetch = await page_for(page_state(store))
    _, body = await fetch("/?fragment=1")
    assert 'id="poison"' in body and "No poison events" in body


async def test_the_page_shows_restarting_parts_escaped(store: Store, page_for: Callable) -> None:
    from sftriggerd.supervision import PartHealth

    state = page_state(store)
    restarting = PartHealth("pruner", state="restarting", restarts=3, last_error=NASTY)
    state.part_health = lambda: [restarting, PartHealth("dispatcher")]
    fetch = await page_for(state)
    _, body = await fetch("/?fragment=1")
    cells = row(body, "data-part", "pruner")
    assert "restarting" in cells and ">3<" in cells and "&lt;script&gt;" in cells
    assert NASTY not in body
    assert 'data-part="dispatcher"' not in body  # never failed: not listed
    restarting.state = "running"
    _, body = await fetch("/?fragment=1")
    assert "running" in row(body, "data-part", "pruner")  # restarted once: still listed
