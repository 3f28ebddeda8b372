"""The status page over real HTTP on a real store: what it shows, and that it escapes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web

from sftriggerd.admin.state import AdminState
from sftriggerd.admin.status_page import duration_text
from sftriggerd.admin.status_view import DeliveryRate
from sftriggerd.config import parse_settings
from sftriggerd.config.settings import EndpointSettings
from sftriggerd.delivery import Dispatcher
from sftriggerd.delivery.breaker import BreakerSnapshot
from sftriggerd.lag_history import LagHistory
from sftriggerd.metrics import Metrics
from sftriggerd.sources.status import TriggerStatus
from sftriggerd.store.base import Store
from sftriggerd.store.records import Checkpoint, Dead, Delivered, NewEvent, Retry
from tests.support.admin import Serve
from tests.support.receiver import Arrival, Receiver
from tests.support.waiting import eventually

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
CONFIG = f"""
salesforce: {{auth: {{client_id: c, client_secret: s, username: u, password: p}}}}
server: {{listen: "127.0.0.1:0", admin_token: "%s"}}
endpoints:
  - {{name: hook, url: "http://127.0.0.1:9/hook", secret: "{SECRET}"}}
  - {{name: quiet, url: "http://127.0.0.1:9/quiet", secret: "{SECRET}"}}
"""
TOKEN = "s3cret-admin"
NASTY = "<script>alert('x')</script>"


LAG_NAMED = "accounts: lag at most 45 s, latest 3.0 s, in the last 60 minutes"


def lag_history_of(trigger: str) -> LagHistory:
    """Sampled 10 and 5 minutes ago and now, as the status reporter would have."""
    minutes_ago = [10]
    history = LagHistory(lambda: time.time() - 60 * minutes_ago[0])
    for ago, lag in ((10, 2.0), (5, 45.0), (0, 3.0)):
        minutes_ago[0] = ago
        history.record(trigger, lag)
    return history


def page_state(store: Store | None, token: str = "", trigger: str = "accounts") -> AdminState:
    """Two configured endpoints, one streaming trigger that is connected, with its lag
    sampled over the last ten minutes."""
    settings = parse_settings(CONFIG % token, environ={})
    metrics = Metrics()
    status = TriggerStatus(name=trigger, mode="streaming", mode_reason="auto: PushTopic exists")
    status.state = "running"
    status.checkpoint = "replay 4711"
    status.caught_up_to = datetime.now(UTC) - timedelta(seconds=3)
    metrics.stream_connected.labels(trigger=trigger).set(1)
    return AdminState(
        settings=settings,
        metrics=metrics,
        store=store,
        trigger_status=lambda: [status.as_json()],
        lag_history=lag_history_of(trigger),
    )


@dataclass(frozen=True)
class Seeded:
    delivered: int
    dead: int
    retrying: int


async def seed_failures(
    store: Store, error: str = "HTTP 410 Gone", dead: int = 1, retry_error: str = "HTTP 503: busy"
) -> Seeded:
    """For endpoint `hook`: one delivered, `dead` dead and one retrying delivery."""
    now = datetime.now(UTC)
    events = [
        NewEvent(
            event_id=f"evt_{n}",
            record_id=f"r{n}",
            occurred_at=now,
            body=b"{}",
            endpoints=("hook",),
        )
        for n in range(dead + 2)
    ]
    await store.ingest("accounts", events, Checkpoint(trigger="accounts", position={}))
    claims = await store.claim_due("hook", dead + 2, timedelta(seconds=30))
    delivered, retrying, *dead_claims = claims
    await store.record_outcome(delivered, Delivered(status=200))
    await store.record_outcome(retrying, Retry(timedelta(minutes=2), status=503, error=retry_error))
    for claim in dead_claims:
        await store.record_outcome(claim, Dead(status=410, error=error))
    return Seeded(delivered.delivery_id, dead_claims[-1].delivery_id, retrying.delivery_id)


def webhook_body(n: int, kind: str) -> bytes:
    """The parts of a real webhook body the feed reads: type, record, source."""
    source = {"kind": "streaming", "transport": "pubsub"}
    return json.dumps({"type": kind, "record_id": f"001R{n}", "source": source}).encode()


async def deliver_through_receiver(store: Store, receiver: Receiver) -> dict[str, int]:
    """Three Account changes sent by a real dispatcher to a real receiver, which answers
    204 to two and 410 Gone (dead at once) to the third; event id -> delivery id."""

    async def answer(arrival: Arrival) -> web.StreamResponse:
        return web.Response(status=410 if arrival.event_id == "evt_gone" else 204)

    receiver.respond = answer
    names = ["evt_a", "evt_b", "evt_gone"]
    events = [
        NewEvent(
            event_id=name,
            record_id=f"001R{n}",
            occurred_at=datetime.now(UTC) - timedelta(seconds=2),
            body=webhook_body(n, "Account"),
            endpoints=("hook",),
            change="created",
        )
        for n, name in enumerate(names)
    ]
    await store.ingest("accounts", events, Checkpoint(trigger="accounts", position={}))
    hook = EndpointSettings.model_validate({"name": "hook", "url": receiver.url, "secret": SECRET})
    stopping = asyncio.Event()
    task = asyncio.create_task(Dispatcher(store, [hook], Metrics()).run(stopping))

    async def finished() -> bool:
        return len((await store.recent_activity(timedelta(hours=1), 10)).latest) == 3

    try:
        await eventually(finished)
    finally:
        stopping.set()
        await asyncio.wait_for(task, timeout=10)
    rows = await store.list_deliveries(limit=10)
    return {row.event_id: row.id for row in rows}


Fetch = Callable[..., Awaitable[tuple[aiohttp.ClientResponse, str]]]


@pytest.fixture
async def page_for(serve: Serve) -> AsyncIterator[Callable[[AdminState], Awaitable[Fetch]]]:
    http = aiohttp.ClientSession()

    async def start(state: AdminState) -> Fetch:
        base = await serve(state)

        async def fetch(path: str = "/") -> tuple[aiohttp.ClientResponse, str]:
            async with http.get(base + path) as response:
                return response, await response.text()

        return fetch

    yield start
    await http.close()


def row(body: str, attribute: str, key: object) -> str:
    match = re.search(rf'<tr {attribute}="{key}">(.*?)</tr>', body)
    assert match, f"no row {attribute}={key}"
    return match.group(1)


async def test_shows_triggers_endpoints_and_failures(store: Store, page_for: Callable) -> None:
    seeded = await seed_failures(store)
    state = page_state(store)
    state.breakers = lambda: {
        "hook": BreakerSnapshot(
            state="open",
            consecutive_failures=5,
            opened_at=datetime.now(UTC),
            cooldown=timedelta(seconds=30),
            half_open_at=datetime.now(UTC) + timedelta(seconds=30),
        )
    }
    fetch = await page_for(state)
    response, body = await fetch("/")
    assert response.status == 200 and response.content_type == "text/html"
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in body
    for section in ("Triggers", "Endpoints", "Recent failures"):
        assert f"<h2>{section}</h2>" in body
    trigger = row(body, "data-trigger", "accounts")
    assert "streaming" in trigger and "auto: PushTopic exists" in trigger
    assert ">yes<" in trigger and "replay 4711" in trigger and "3." in trigger  # lag ~3 s
    hook = row(body, "data-endpoint", "hook")
    assert ">1<" in hook and "open" in hook and "HTTP 410 Gone" in hook
    quiet = row(body, "data-endpoint", "quiet")
    assert 'data-label="Pending">0<' in quiet and "not sending here" in quiet
    dead = row(body, "data-delivery", seeded.dead)
    assert ">dead<" in dead and f'data-redrive="{seeded.dead}"' in dead
    retrying = row(body, "data-delivery", seeded.retrying)
    assert ">retrying<" in retrying and "HTTP 503" in retrying and "data-redrive" not in retrying
    assert f'data-delivery="{seeded.delivered}"' not in body
    assert "Backlog: <strong>1</strong> pending" in body


def svg_of(body: str, endpoint: str) -> str:
    match = re.search(rf'<figure data-chart="{endpoint}">(.*?)</figure>', body, re.S)
    assert match, f"no chart of {endpoint}"
    return match.group(1)


async def test_the_last_hour_is_charted_and_the_latest_deliveries_listed(
    store: Store, receiver: Receiver, page_for: Callable
) -> None:
    ids = await deliver_through_receiver(store, receiver)
    fetch = await page_for(page_state(store))
    _, body = await fetch("/")
    hook = svg_of(body, "hook")
    named = "hook: 2 delivered, 1 failed in the last 60 minutes"
    assert f'role="img" aria-label="{named}"' in hook and f"<title>{named}</title>" in hook
    assert hook.count('class="bar-delivered"') == 60 and hook.count('class="bar-failed"') == 60
    assert 'aria-label="quiet: 0 delivered, 0 failed in the last 60 minutes"' in svg_of(
        body, "quiet"
    )
    latest = body.split('<section id="latest">')[1].split("</section>")[0]
    assert latest.count("<tr data-latest=") == 3
    gone = row(body, "data-latest", ids["evt_gone"])
    assert ">dead<" in gone and "HTTP 410" in gone and "001R2" in gone
    delivered = row(body, "data-latest", ids["evt_a"])
    assert "Account<small>created</small>" in delivered and "via pubsub" in delivered
    assert ">HTTP 204<" in delivered and "accounts" in delivered
    assert re.search(r'data-label="Latency">\d+ ms<', delivered)
    # The newest finish first; the page's refresh swaps these sections in like the rest.
    assert latest.index(f'data-latest="{ids["evt_gone"]}"') < latest.index(
        f'data-latest="{ids["evt_a"]}"'
    )
    _, fragment = await fetch("/?fragment=1")
    assert '<section id="activity">' in fragment and '<section id="latest">' in fragment


def lag_chart_of(body: str, trigger: str) -> str:
    match = re.search(rf'<figure data-lag-chart="{trigger}">(.*?)</figure>', body, re.S)
    assert match, f"no lag chart of {trigger}"
    return match.group(1)


async def test_each_trigger_has_its_lag_chart_in_the_triggers_section(
    store: Store, page_for: Callable
) -> None:
    state = page_state(store)
    led = state.trigger_status
    assert led is not None
    standby = TriggerStatus(name="orders", mode="polling", mode_reason="configured")
    state.trigger_status = lambda: [
        *led(),
        {**standby.as_json(), "state": "standby", "leader": "replica-b"},
    ]
    fetch = await page_for(state)
    _, body = await fetch("/")
    triggers = body.split('<section id="triggers">')[1].split("</section>")[0]
    chart = lag_chart_of(triggers, "accounts")
    assert f'role="img" aria-label="{LAG_NAMED}"' in chart
    assert f"<title>{LAG_NAMED}</title>" in chart
    assert chart.count('class="bar-lag"') == 3  # three sampled minutes, the rest gaps
    assert "lag at most 45 s, latest 3.0 s" in chart
    # Led elsewhere: said so, no chart (a flat zero would claim it is caught up).
    other = lag_chart_of(triggers, "orders")
    assert "not led here (led by replica-b)" in other and "<svg" not in other
    # The history lives in memory: the page says since when it has one.
    assert re.search(r"since \d\d:\d\d UTC, when this process started", triggers)
    _, fragment = await fetch("/?fragment=1")
    assert 'data-lag-chart="accounts"' in fragment


async def test_the_feed_escapes_what_the_body_says(store: Store, page_for: Callable) -> None:
    event = NewEvent(
        event_id="e",
        record_id=NASTY,
        occurred_at=datetime.now(UTC),
        body=webhook_body(9, NASTY),
        endpoints=("hook",),
        change=NASTY,
    )
    await store.ingest("accounts", [event], Checkpoint(trigger="accounts", position={}))
    [claim] = await store.claim_due("hook", 1, timedelta(seconds=30))
    await store.record_outcome(claim, Delivered(status=200))
    _, body = await (await page_for(page_state(store)))("/")
    assert "<script>alert" not in body
    assert row(body, "data-latest", claim.delivery_id).count("&lt;script&gt;") == 3


async def test_a_quiet_hour_says_so(store: Store, page_for: Callable) -> None:
    _, body = await (await page_for(page_state(store)))("/")
    assert "No delivery finished in the last hour." in body
    assert 'aria-label="hook: 0 delivered, 0 failed in the last 60 minutes"' in body


async def test_every_value_from_config_or_salesforce_is_escaped(
    store: Store, page_for: Callable
) -> None:
    await seed_failures(store, error=NASTY, retry_error=NASTY)
    state = page_state(store, trigger=NASTY)
    # Errors of a trigger come from Salesforce; a hostile one must stay text.
    trigger_json = state.trigger_status() if state.trigger_status else []
    trigger_json[0]["last_error"] = '"><img src=x onerror=alert(1)>'
    state.trigger_status = lambda: trigger_json
    state.readiness = [lambda: [NASTY]]
    fetch = await page_for(state)
    _, body = await fetch("/")
    assert "<script>alert" not in body and "<img src=x" not in body
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in body
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in body
    # The page's own script is the only <script> element.
    assert body.count("<script>") == 1


async def test_only_the_pages_own_script_and_style_may_run(
    store: Store, page_for: Callable
) -> None:
    fetch = await page_for(page_state(store))
    response, body = await fetch("/")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    for tag in ("script", "style"):
        match = re.search(rf"<{tag}>(.*?)</{tag}>", body, re.S)
        assert match
        digest = base64.b64encode(hashlib.sha256(match.group(1).encode()).digest()).decode()
        assert f"{tag}-src 'sha256-{digest}'" in policy
    assert response.headers["Cache-Control"] == "no-store"


async def test_the_token_is_asked_for_never_embedded(store: Store, page_for: Callable) -> None:
    _, with_token = await (await page_for(page_state(store, token=TOKEN)))("/")
    assert 'id="token-form"' in with_token and TOKEN not in with_token
    _, open_page = await (await page_for(page_state(store)))("/")
    assert 'id="token-form"' not in open_page


async def test_the_fragment_is_the_sections_alone(store: Store, page_for: Callable) -> None:
    await seed_failures(store)
    fetch = await page_for(page_state(store))
    response, body = await fetch("/?fragment=1")
    assert response.status == 200
    assert body.startswith('<section id="summary"') and "<html" not in body
    assert "<h2>Recent failures</h2>" in body


async def test_a_missing_store_is_reported_not_raised(page_for: Callable) -> None:
    fetch = await page_for(page_state(None))
    response, body = await fetch("/")
    assert response.status == 200
    assert "the store is not open" in body and 'data-trigger="accounts"' in body


async def test_leftover_endpoints_and_redriven_deliveries_are_labelled(
    store: Store, page_for: Callable
) -> None:
    now = datetime.now(UTC)
    event = NewEvent(event_id="e", record_id="r", occurred_at=now, body=b"{}", endpoints=("gone",))
    await store.ingest("accounts", [event], Checkpoint(trigger="accounts", position={}))
    [claim] = await store.claim_due("gone", 1, timedelta(seconds=30))
    await store.record_outcome(claim, Dead(status=None, error="connection refused"))
    await store.redrive(claim.delivery_id)
    _, body = await (await page_for(page_state(store)))("/")
    assert "not in the config" in row(body, "data-endpoint", "gone")
    assert ">redriven<" in row(body, "data-delivery", claim.delivery_id)


def test_delivery_rate_covers_the_window_and_starts_empty() -> None:
    rate = DeliveryRate(window_s=300.0)
    assert rate.observe(1000.0, {"hook": 10.0}) == ({}, 0.0)
    rates, span = rate.observe(1060.0, {"hook": 70.0, "new": 6.0})
    assert span == 60.0 and rates == {"hook": 60.0, "new": 6.0}
    for at in range(1120, 1600, 60):
        rates, span = rate.observe(float(at), {"hook": 70.0})
    # Old samples fall out; the base stays at most one sample beyond the window.
    assert 300.0 <= span < 360.0 and rates == {"hook": 0.0}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(4.04, "4.0 s"), (42.4, "42 s"), (125, "2 min 5 s"), (7260, "2 h 1 min"), (90000, "1 d 1 h")],
)
def test_durations_read_naturally(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text
