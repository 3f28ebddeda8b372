"""The human status page at `GET /`: triggers, endpoints, backlog, failures, poison, parts.

The server renders everything, escaping every value: trigger and endpoint names come from the
config, errors from Salesforce and from webhook answers, and none of them may become markup.
The page's one script refreshes by fetching `/?fragment=1` (the same sections, rendered the
same way) and swapping them in, so there is one renderer and the page does not jump. Redrive
goes through the JSON API with the admin token the operator typed into this tab.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from importlib import resources
from time import monotonic
from typing import Any

from aiohttp import web

from ..delivery.breaker import BreakerSnapshot
from ..events.payload import format_time
from ..store.records import DeliveryRow, PoisonEvent
from ..supervision import PartHealth
from .activity_view import ActivityReader, render_activity
from .api import STATE_KEY
from .lag_view import render_lag_charts
from .markup import badge as _badge
from .markup import duration_text
from .markup import e as _e
from .markup import row as _row
from .markup import table as _table
from .markup import when as _when
from .replicas import ReplicaView
from .status_view import DeliveryRate, EndpointView, StatusView, delivered_totals, gather_status

_STATIC = resources.files(__package__).joinpath("static")
_CSS = _STATIC.joinpath("status.css").read_text("utf-8")
_JS = _STATIC.joinpath("status.js").read_text("utf-8")


def _csp_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


# Only our own script and style run, by hash: should a value ever slip through unescaped,
# the browser still refuses to execute it. No framing, so Redrive cannot be clickjacked.
_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; script-src {_csp_hash(_JS)}; style-src {_csp_hash(_CSS)};"
        " connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_ERROR_CHARS = 300
# A poison message can be megabytes of someone else's JSON: the page shows its start.
_MESSAGE_CHARS = 200


# --- rendering: pure functions of the view; every value goes through `_e` ----------------


def _error(text: object) -> str:
    """An error in red; a very long one is cut on the page (phones), whole in its title."""
    if not text:
        return "—"
    whole = str(text)
    shown = whole if len(whole) <= _ERROR_CHARS else whole[: _ERROR_CHARS - 1] + "…"
    return f'<span class="bad" title="{_e(whole)}">{_e(shown)}</span>'


def _delivery_link(delivery_id: int, label: str = "") -> str:
    """To the delivery's detail page (relative: the page may be served under a prefix)."""
    return f'<a href="deliveries/{_e(delivery_id)}">{_e(label)}{_e(delivery_id)}</a>'


# "standby": another replica leads the trigger; this one takes over should it fail.
_STATE_KINDS = {"running": "ok", "starting": "warn", "failed": "bad", "standby": "muted"}
_CONNECTED: dict[bool | None, str] = {
    True: _badge("yes", "ok"),
    False: _badge("no", "bad"),
    None: '<span class="muted">unknown</span>',
}


def _trigger_row(trigger: dict[str, Any], view: StatusView) -> str:
    name = str(trigger.get("name"))
    state = str(trigger.get("state"))
    if trigger.get("mode") != "streaming":
        connected = '<span class="muted">n/a (polling)</span>'
    else:
        connected = _CONNECTED[view.connected.get(name)]
    lag = trigger.get("lag_s")
    error = trigger.get("last_error")
    return _row(
        "data-trigger",
        name,
        [
            ("Trigger", f"<strong>{_e(name)}</strong>"),
            ("Mode", f"{_mode(trigger)}<small>{_e(trigger.get('mode_reason'))}</small>"),
            ("State", _badge(state, _STATE_KINDS.get(state, "warn"))),
            ("Connected", connected),
            ("Checkpoint", f"<code>{_e(trigger.get('checkpoint') or '—')}</code>"),
            ("Lag", _e(duration_text(float(lag))) if lag is not None else "—"),
            ("Last error", _error(error)),
        ],
    )


def _mode(trigger: dict[str, Any]) -> str:
    """`streaming over pubsub`: a streamed trigger's mode names its transport."""
    transport = trigger.get("transport")
    over = f" over {_e(transport)}" if transport else ""
    return f"{_e(trigger.get('mode'))}{over}"


def _breaker_html(breaker: BreakerSnapshot | None, now: datetime) -> str:
    if breaker is None:
        return '<span class="muted">not sending here</span>'
    if breaker.state == "open":
        at = breaker.half_open_at
        return _badge("open", "bad") + (f"<small>probe {_when(at, now)}</small>" if at else "")
    if breaker.state == "half_open":
        return _badge("half-open", "warn") + "<small>one probe decides</small>"
    failures = breaker.consecutive_failures
    streak = f"<small>{failures} failed in a row</small>" if failures else ""
    return _badge("closed", "ok") + streak


def _endpoint_row(endpoint: EndpointView, view: StatusView) -> str:
    name = f"<strong>{_e(endpoint.name)}</strong>"
    if not endpoint.configured:
        name += "<small>not in the config</small>"
    failure = endpoint.last_failure
    last = "—"
    if failure is not None:
        where = f"{_delivery_link(failure.id, 'delivery ')}, {_e(failure.status)}"
        last = f"{_error(failure.last_error)}<small>{where}</small>"
    rate = "—" if endpoint.rate_per_min is None else f"{endpoint.rate_per_min:.1f}"
    dead = endpoint.counts.dead
    return _row(
        "data-endpoint",
        endpoint.name,
        [
            ("Endpoint", name),
            ("Pending", _e(endpoint.counts.pending)),
            ("Dead", f'<span class="bad">{_e(dead)}</span>' if dead else "0"),
            ("Breaker", _breaker_html(endpoint.breaker, view.now)),
            ("Last failure", last),
            ("Delivered/min", _e(rate)),
        ],
    )


def _failure_row(row: DeliveryRow, view: StatusView) -> str:
    if row.status == "dead":
        status = _badge("dead", "bad")
        action = f'<button type=button class=redrive data-redrive="{_e(row.id)}">Redrive</button>'
    else:
        # A redriven delivery keeps its last error until its next attempt answers.
        label = (
            "sending" if row.status == "in_flight" else "retrying" if row.attempts else "redriven"
        )
        status = _badge(label, "warn")
        action = "—"
    # The outcome already writes the status first ("HTTP 503: ..."); fall back to it alone.
    answer = row.last_error or (f"HTTP {row.last_status}" if row.last_status else "")
    next_at = _when(row.next_attempt_at, view.now) if row.next_attempt_at else "—"
    return _row(
        "data-delivery",
        row.id,
        [
            ("Delivery", f"{_delivery_link(row.id)}<small>{_e(row.event_id)}</small>"),
            ("Endpoint", _e(row.endpoint)),
            ("Trigger", _e(row.trigger)),
            ("Status", status),
            ("Attempts", _e(row.attempts)),
            ("Last answer", _error(answer)),
            ("Next attempt", next_at if row.status != "dead" else "—"),
            ("Action", action),
        ],
    )


def _poison_row(event: PoisonEvent, view: StatusView) -> str:
    message = event.message
    shown = message if len(message) <= _MESSAGE_CHARS else message[: _MESSAGE_CHARS - 1] + "…"
    when = _when(event.received_at, view.now) if event.received_at else "—"
    return _row(
        "data-poison",
        event.trigger,
        [
            ("Reason", _error(event.reason)),
            ("Trigger", _e(event.trigger)),
            ("Received", when),
            ("Message", f"<code>{_e(shown)}</code>"),
        ],
    )


def _part_row(part: PartHealth, view: StatusView) -> str:
    if part.state == "restarting":
        at = part.restart_at
        when = f"<small>{_when(at, view.now)}</small>" if at else ""
        state = _badge("restarting", "bad") + when
    else:
        state = _badge("running", "ok")
    return _row(
        "data-part",
        part.name,
        [
            ("Part", f"<strong>{_e(part.name)}</strong>"),
            ("State", state),
            ("Restarts", _e(part.restarts)),
            ("Last error", _error(part.last_error)),
        ],
    )


def _replica_row(replica: ReplicaView, view: StatusView) -> str:
    name = f"<strong>{_e(replica.name)}</strong>"
    if replica.this:
        name += " " + _badge("this one", "ok")
    led = ", ".join(replica.triggers)
    return _row(
        "data-replica",
        replica.name,
        [
            ("Replica", name),
            ("Started", _when(replica.started_at, view.now)),
            ("Heartbeat", _when(replica.heartbeat_at, view.now)),
            ("Leads", _e(led) if led else '<span class="muted">no trigger</span>'),
        ],
    )


def _summary(view: StatusView) -> str:
    pending = sum(endpoint.counts.pending for endpoint in view.endpoints)
    dead = sum(endpoint.counts.dead for endpoint in view.endpoints)
    backlog = (
        f"<p>Backlog: <strong>{pending}</strong> pending, "
        f'<strong class="{"bad" if dead else "ok"}">{dead}</strong> dead, '
        f"across {len(view.endpoints)} endpoint{'' if len(view.endpoints) == 1 else 's'}.</p>"
    )
    if view.not_ready:
        readiness = "".join(f"<li>{_e(reason)}</li>" for reason in view.not_ready)
        backlog = f"<p>{_badge('not ready', 'warn')}</p><ul>{readiness}</ul>" + backlog
    else:
        backlog = f"<p>{_badge('ready', 'ok')}</p>" + backlog
    if view.store_problem:
        backlog += f'<p class="bad">{_e(view.store_problem)}</p>'
    return f'<section id="summary" aria-label="Summary">{backlog}</section>'


def render_sections(view: StatusView) -> str:
    """The inside of `<main>`: what the page's script swaps in on every refresh."""
    triggers = _table(
        ["Trigger", "Mode", "State", "Connected", "Checkpoint", "Lag", "Last error"],
        [_trigger_row(trigger, view) for trigger in view.triggers],
        "No triggers are running in this process.",
    )
    lag_charts = render_lag_charts(view.triggers, view.lag, view.lag_kept_since, view.now)
    span = (
        f"over the last {duration_text(view.rate_span_s)}"
        if view.rate_span_s
        else "shown from the next refresh on"
    )
    endpoints = _table(
        ["Endpoint", "Pending", "Dead", "Breaker", "Last failure", "Delivered/min"],
        [_endpoint_row(endpoint, view) for endpoint in view.endpoints],
        "No endpoints are configured.",
    )
    failure_headers = ["Delivery", "Endpoint", "Trigger", "Status", "Attempts", "Last answer"]
    failures = _table(
        [*failure_headers, "Next attempt", "Action"],
        [_failure_row(row, view) for row in view.failures],
        "No delivery is failing.",
    )
    poison = _table(
        ["Reason", "Trigger", "Received", "Message"],
        [_poison_row(event, view) for event in view.poison],
        "No poison events: every message from Salesforce could be read.",
    )
    replicas = _table(
        ["Replica", "Started", "Heartbeat", "Leads"],
        [_replica_row(replica, view) for replica in view.replicas],
        "No replica has been heard from yet.",
    )
    parts = ""
    if view.troubled_parts:
        rows = [_part_row(part, view) for part in view.troubled_parts]
        table = _table(["Part", "State", "Restarts", "Last error"], rows, "")
        parts = f'<section id="parts"><h2>Restarted parts</h2>{table}</section>'
    return (
        _summary(view)
        + parts
        + f'<section id="triggers"><h2>Triggers</h2>{triggers}{lag_charts}</section>'
        + f'<section id="replicas"><h2>Replicas</h2>{replicas}</section>'
        + f'<section id="endpoints"><h2>Endpoints</h2>{endpoints}'
        + f'<p class="muted">Delivered/min: by this process, {_e(span)}.</p>'
        + "</section>"
        + render_activity(view.activity, [endpoint.name for endpoint in view.endpoints], view.now)
        + f'<section id="failures"><h2>Recent failures</h2>{failures}</section>'
        + f'<section id="poison"><h2>Poison events</h2>{poison}'
        + '<p class="muted">Messages that could not be turned into events; the source moved'
        + " past them. All of them: <code>GET /api/poison</code>.</p></section>"
    )


def render_page(sections: str, view: StatusView) -> str:
    token_form = (
        '<form id="token-form" autocomplete="off">'
        '<label for="token">Admin token</label>'
        '<input id="token" type="password" placeholder="empty to forget">'
        '<button type="submit">Save</button><span id="token-state" class="muted"></span>'
        "</form>"
        if view.token_required
        else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>sftriggerd status</title>"
        # Without the script the page still refreshes itself, by reloading.
        '<noscript><meta http-equiv="refresh" content="15"></noscript>'
        f"<style>{_CSS}</style></head><body>"
        "<header><h1>sftriggerd</h1>"
        f'<p id="refresh-note" class="muted">Updated {_e(format_time(view.now))}</p>'
        f'{token_form}<p id="message" role="status" aria-live="polite"></p></header>'
        f'<main id="status">{sections}</main>'
        f"<script>{_JS}</script></body></html>"
    )


RATE_KEY = web.AppKey("delivery_rate", DeliveryRate)
ACTIVITY_KEY = web.AppKey("activity_reader", ActivityReader)


async def status_page(request: web.Request) -> web.Response:
    app = request.app
    view = await gather_status(app[STATE_KEY], app[RATE_KEY], app[ACTIVITY_KEY])
    sections = render_sections(view)
    body = sections if request.query.get("fragment") else render_page(sections, view)
    response = web.Response(text=body, content_type="text/html", charset="utf-8")
    response.headers.update(_HEADERS)
    return response


def add_status_page(app: web.Application) -> None:
    rate = DeliveryRate()
    # A first sample now, so the first view already has a rate (since the server started).
    rate.observe(monotonic(), delivered_totals(app[STATE_KEY].metrics))
    app[RATE_KEY] = rate
    app[ACTIVITY_KEY] = ActivityReader()
    app.router.add_get("/", status_page)
