"""The admin JSON API: reads are open; mutations go through `guard` (JSON content type, the
admin token, refused beyond loopback without one). Parameters are read by `params`."""

from __future__ import annotations

from typing import Any, get_args

from aiohttp import web

from ..events.payload import format_time
from ..store.records import DeliveryRow, DeliveryStatus, PoisonEvent
from .guard import error
from .params import parse_choice, parse_id, parse_limit, parse_name
from .state import STATE_KEY

__all__ = ["STATE_KEY", "add_api_routes", "delivery_json", "error", "poison_json"]

_STATUSES: tuple[str, ...] = get_args(DeliveryStatus)


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


def poison_json(event: PoisonEvent) -> dict[str, Any]:
    return {
        "trigger": event.trigger,
        "reason": event.reason,
        "received_at": format_time(event.received_at) if event.received_at else None,
        "message": event.message,
    }


async def list_deliveries(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    status = parse_choice(request.query.get("status"), _STATUSES, "status")
    endpoint = parse_name(request.query.get("endpoint"), "endpoint")
    limit = parse_limit(request.query.get("limit"))
    if state.store is None:
        return error(503, "the store is not open")
    rows = await state.store.list_deliveries(
        status=status,  # type: ignore[arg-type]  # one of _STATUSES, checked above
        endpoint=endpoint,
        limit=limit,
    )
    return web.json_response([delivery_json(row) for row in rows])


async def list_poison(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    trigger = parse_name(request.query.get("trigger"), "trigger")
    limit = parse_limit(request.query.get("limit"))
    if state.store is None:
        return error(503, "the store is not open")
    events = await state.store.list_poison(trigger=trigger, limit=limit)
    return web.json_response([poison_json(event) for event in events])


async def redrive_delivery(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    delivery_id = parse_id(request.match_info["id"])
    if state.store is None:
        return error(503, "the store is not open")
    row = await state.store.get_delivery(delivery_id)
    if row is None:
        return error(404, f"no delivery {delivery_id}")
    if not await state.store.redrive(delivery_id):
        return error(409, f"delivery {delivery_id} is {row.status}; only dead ones redrive")
    if state.on_redrive is not None:
        state.on_redrive(row.endpoint)
    return web.json_response({"id": delivery_id, "status": "pending"}, status=202)


async def list_triggers(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    triggers = state.trigger_status() if state.trigger_status is not None else []
    return web.json_response(triggers)


async def list_parts(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    parts = state.part_health() if state.part_health is not None else []
    return web.json_response([part.as_json() for part in parts])


def add_api_routes(app: web.Application) -> None:
    app.router.add_get("/api/triggers", list_triggers)
    app.router.add_get("/api/parts", list_parts)
    app.router.add_get("/api/deliveries", list_deliveries)
    app.router.add_get("/api/poison", list_poison)
    app.router.add_post("/api/deliveries/{id}/redrive", redrive_delivery)
