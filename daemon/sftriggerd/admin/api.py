"""The JSON API of CONTRACT §4: reads are open, mutations need the admin token when set."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any, get_args

from aiohttp import web

from ..events.payload import format_time
from ..store.records import DeliveryRow, DeliveryStatus
from .state import AdminState

STATE_KEY = web.AppKey("admin_state", AdminState)
_STATUSES = get_args(DeliveryStatus)
_MAX_LIMIT = 1000


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def delivery_json(row: DeliveryRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "event_id": row.event_id,
        "endpoint": row.endpoint,
        "trigger": row.trigger,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": format_time(row.next_attempt_at) if row.next_attempt_at else None,
        "last_status": row.last_status,
        "last_error": row.last_error,
        "created_at": format_time(row.created_at),
    }


def authorized(request: web.Request) -> bool:
    token = request.app[STATE_KEY].settings.server.admin_token
    if token is None:
        return True
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    expected = token.get_secret_value().encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected)


def unauthorized() -> web.Response:
    response = error(401, "this call needs Authorization: Bearer <server.admin_token>")
    response.headers["WWW-Authenticate"] = 'Bearer realm="sftriggerd"'
    return response


async def list_deliveries(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    if state.store is None:
        return error(503, "the store is not open")
    status = request.query.get("status") or None
    if status is not None and status not in _STATUSES:
        return error(400, f"status must be one of {', '.join(_STATUSES)}")
    limit_text = request.query.get("limit", "100")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= _MAX_LIMIT:
        return error(400, f"limit must be a whole number from 1 to {_MAX_LIMIT}")
    rows = await state.store.list_deliveries(
        status=status,  # type: ignore[arg-type]  # checked against _STATUSES above
        endpoint=request.query.get("endpoint") or None,
        limit=int(limit_text),
    )
    return web.json_response([delivery_json(row) for row in rows])


async def redrive_delivery(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    if not authorized(request):
        return unauthorized()
    if state.store is None:
        return error(503, "the store is not open")
    id_text = request.match_info["id"]
    if not id_text.isdigit():
        return error(400, f"'{id_text}' is not a delivery id")
    delivery_id = int(id_text)
    row = await state.store.get_delivery(delivery_id)
    if row is None:
        return error(404, f"no delivery {delivery_id}")
    if not await state.store.redrive(delivery_id, datetime.now(UTC)):
        return error(409, f"delivery {delivery_id} is {row.status}; only dead ones redrive")
    if state.on_redrive is not None:
        state.on_redrive(row.endpoint)
    return web.json_response({"id": delivery_id, "status": "pending"}, status=202)


async def list_triggers(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    triggers = state.trigger_status() if state.trigger_status is not None else []
    return web.json_response(triggers)


def add_api_routes(app: web.Application) -> None:
    app.router.add_get("/api/triggers", list_triggers)
    app.router.add_get("/api/deliveries", list_deliveries)
    app.router.add_post("/api/deliveries/{id}/redrive", redrive_delivery)
