"""Resend, bulk redrive and rewind in the admin API. All are mutations: `guard` asks for the
JSON content type and the admin token before they run.

    POST /api/deliveries/{id}/resend
    POST /api/deliveries/redrive   {"endpoint": "crm", "status": "dead", "since": ..., "until": ...}
    POST /api/deliveries/resend    {"endpoint": "crm", "status": "delivered", "since": ...}
    POST /api/triggers/{name}/rewind   {"to": "2026-12-01T10:00:00Z" | "1234", "resend": false}
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .. import replay
from ..errors import UsageError
from ..sources.rewind import RewindRefused
from ..store.leadership import LeaseLostError
from ..store.replay import Requeued, Selection
from .guard import error
from .params import BadRequestError, parse_id
from .state import STATE_KEY, AdminState

_BULK_KEYS = frozenset({"endpoint", "status", "since", "until"})
_REWIND_KEYS = frozenset({"to", "resend"})


async def _body(request: web.Request, allowed: frozenset[str]) -> dict[str, Any]:
    """The JSON object sent, with only known keys (an empty body is `{}`)."""
    raw = await request.read()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        raise BadRequestError("the body is not JSON") from None
    except RecursionError:
        # Nested past the decoder's stack (a few kB of `[`): no request of ours nests at all.
        raise BadRequestError("the body nests too deeply") from None
    if not isinstance(body, dict):
        raise BadRequestError("the body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequestError(f"unknown keys {', '.join(map(repr, unknown))}")
    return body


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise BadRequestError(f"{key} must be a string")
    return value


def _answer(exc: UsageError) -> web.Response:
    if isinstance(exc, replay.UnknownNameError):
        return error(404, str(exc))
    if isinstance(exc, RewindRefused):
        return error(422, str(exc))
    return error(400, str(exc))


def _notify(state: AdminState, done: Requeued | None) -> None:
    if done is not None and state.on_redrive is not None:
        for endpoint in sorted(done.endpoints):
            state.on_redrive(endpoint)


def _requeued_json(done: Requeued) -> dict[str, Any]:
    return {"requeued": done.requeued, "already_pending": done.already_pending}


async def resend_delivery(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    delivery_id = parse_id(request.match_info["id"])
    if state.store is None:
        return error(503, "the store is not open")
    done = await state.store.requeue(Selection(delivery_id=delivery_id))
    if done.requeued == 0 and done.already_pending == 0:
        return error(404, f"no delivery {delivery_id}")
    _notify(state, done)
    answer = {"id": delivery_id, "status": "pending", "resent": done.requeued == 1}
    if not done.requeued:
        answer["detail"] = "already pending: nothing to do"
    return web.json_response(answer, status=202 if done.requeued else 200)


async def _bulk(request: web.Request, operation: replay.Operation) -> web.Response:
    state = request.app[STATE_KEY]
    body = await _body(request, _BULK_KEYS)
    now = datetime.now(UTC)
    try:
        selection = replay.bulk_selection(
            state.settings,
            operation,
            _text(body, "endpoint"),
            _text(body, "status"),
            _text(body, "since"),
            _text(body, "until"),
            now,
        )
    except UsageError as exc:
        return _answer(exc)
    if state.store is None:
        return error(503, "the store is not open")
    done = await state.store.requeue(selection)
    _notify(state, done)
    return web.json_response({"endpoint": selection.endpoint, **_requeued_json(done)})


async def redrive_bulk(request: web.Request) -> web.Response:
    return await _bulk(request, "redrive")


async def resend_bulk(request: web.Request) -> web.Response:
    return await _bulk(request, "resend")


async def rewind_trigger(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    body = await _body(request, _REWIND_KEYS)
    to, resend = _text(body, "to"), body.get("resend", False)
    if to is None:
        raise BadRequestError('give "to": a time with its zone, or a replay id')
    if not isinstance(resend, bool):
        raise BadRequestError("resend must be true or false")
    if state.store is None:
        return error(503, "the store is not open")
    name = request.match_info["name"]
    source = state.sources.get(name)
    if state.leads is not None and name in state.sources and not state.leads(name):
        return _not_led(name)
    try:
        trigger = replay.trigger_named(state.settings, name)
        done = await replay.rewind(
            state.store,
            trigger,
            to,
            resend,
            datetime.now(UTC),
            restart=source.restart if source is not None else None,
            fence=state.fence_for(name) if state.fence_for is not None else None,
        )
    except UsageError as exc:
        return _answer(exc)
    except LeaseLostError:  # lost while the rewind was under way
        return _not_led(name)
    _notify(state, done.resent)
    answer: dict[str, Any] = {
        "trigger": done.trigger,
        "to": done.point,
        "position": done.position,
        "restarted": source is not None,
        "resent": None if done.resent is None else _requeued_json(done.resent),
    }
    return web.json_response(answer)


def _not_led(trigger: str) -> web.Response:
    # Only the leader's source can be stopped under the move: the operator asks the leader.
    return error(409, f"this replica does not lead trigger {trigger}; see GET /api/replicas")


def add_replay_routes(app: web.Application) -> None:
    app.router.add_post("/api/deliveries/{id}/resend", resend_delivery)
    app.router.add_post("/api/deliveries/redrive", redrive_bulk)
    app.router.add_post("/api/deliveries/resend", resend_bulk)
    app.router.add_post("/api/triggers/{name}/rewind", rewind_trigger)
