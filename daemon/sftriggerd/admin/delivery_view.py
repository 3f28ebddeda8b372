"""One delivery in detail: what was sent and every attempt.

`GET /api/deliveries/{id}` answers JSON: the delivery's fields as `/api/deliveries` lists
them, `event` (the stored webhook body) and `attempt_history`, oldest first. The status page
links each failing delivery to `GET /deliveries/{id}`, the same detail as a page: rendered
by the server, every value escaped, no script, under a policy that allows only its style.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from aiohttp import web

from ..events.payload import format_time
from ..store.records import AttemptRow, DeliveryDetail
from .api import delivery_json
from .guard import error
from .params import parse_id
from .state import STATE_KEY
from .status_page import _CSS, _csp_hash

_PAGE_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src {_csp_hash(_CSS)}; base-uri 'none';"
        " form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def attempt_json(attempt: AttemptRow) -> dict[str, Any]:
    return {
        "at": format_time(attempt.at),
        "duration_ms": attempt.duration_ms,
        "status": attempt.status,
        "error": attempt.error,
        "answer": attempt.answer,
        "next_attempt_at": format_time(attempt.next_attempt_at)
        if attempt.next_attempt_at
        else None,
    }


def event_json(body: bytes) -> Any:
    """The webhook body as JSON; as text should a stored body ever not be JSON."""
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", errors="replace")


def detail_json(detail: DeliveryDetail) -> dict[str, Any]:
    return {
        **delivery_json(detail.delivery),
        "event": event_json(detail.body),
        "attempt_history": [attempt_json(attempt) for attempt in detail.attempts],
    }


async def _read_detail(request: web.Request) -> DeliveryDetail | web.Response:
    state = request.app[STATE_KEY]
    delivery_id = parse_id(request.match_info["id"])
    if state.store is None:
        return error(503, "the store is not open")
    detail = await state.store.get_delivery_detail(delivery_id)
    if detail is None:
        return error(404, f"no delivery {delivery_id}")
    return detail


async def get_delivery(request: web.Request) -> web.Response:
    detail = await _read_detail(request)
    if isinstance(detail, web.Response):
        return detail
    return web.json_response(detail_json(detail))


async def delivery_page(request: web.Request) -> web.Response:
    detail = await _read_detail(request)
    if isinstance(detail, web.Response):
        return detail
    response = web.Response(text=render_detail(detail), content_type="text/html", charset="utf-8")
    response.headers.update(_PAGE_HEADERS)
    return response


def _e(value: object) -> str:
    return escape("—" if value is None or value == "" else str(value), quote=True)


def render_detail(detail: DeliveryDetail) -> str:
    fields = detail_json(detail)
    shown = ["status", "endpoint", "trigger", "event_id", "attempts", "created_at"]
    shown += ["next_attempt_at", "last_status", "last_error"]
    facts = "".join(f"<dt>{_e(key)}</dt><dd>{_e(fields[key])}</dd>" for key in shown)
    rows = "".join(
        f'<tr data-attempt="{number}">'
        f'<td data-label="#">{number}</td>'
        f'<td data-label="At"><time>{_e(attempt["at"])}</time></td>'
        f'<td data-label="Duration">{_e(_ms(attempt["duration_ms"]))}</td>'
        f'<td data-label="Status">{_e(attempt["status"])}</td>'
        f'<td data-label="Error">{_e(attempt["error"])}</td>'
        f'<td data-label="Answer"><code>{_e(attempt["answer"])}</code></td>'
        f'<td data-label="Next attempt">{_e(attempt["next_attempt_at"])}</td></tr>'
        for number, attempt in enumerate(fields["attempt_history"], start=1)
    )
    headers = ["#", "At", "Duration", "Status", "Error", "Answer", "Next attempt"]
    head = "".join(f"<th scope=col>{_e(h)}</th>" for h in headers)
    attempts = (
        f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else '<p class="muted">No attempt is recorded yet.</p>'
    )
    body = json.dumps(fields["event"], indent=2, ensure_ascii=False)
    delivery_id = detail.delivery.id
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>delivery {delivery_id} · sftriggerd</title><style>{_CSS}</style></head><body>"
        f'<header><h1>Delivery {delivery_id}</h1><p><a href="../">Back to the status page</a>'
        f' · <a href="../api/deliveries/{delivery_id}">as JSON</a></p></header><main>'
        f'<section id="delivery"><dl>{facts}</dl></section>'
        f'<section id="attempts"><h2>Attempts, oldest first</h2>{attempts}</section>'
        f'<section id="event"><h2>Event sent</h2><pre><code>{escape(body)}</code></pre></section>'
        "</main></body></html>"
    )


def _ms(duration_ms: object) -> str | None:
    return None if duration_ms is None else f"{duration_ms} ms"


def add_delivery_routes(app: web.Application) -> None:
    app.router.add_get("/api/deliveries/{id}", get_delivery)
    app.router.add_get("/deliveries/{id}", delivery_page)
