"""The Pub/Sub side's `/_emulator/pubsub/...` calls (docs/emulator.md shows each).

- `POST /_emulator/pubsub/fail` `{"status": "UNAVAILABLE", "error_code": "...", "count": 1,
  "match": "Subscribe"}`: the next matching calls end so (count 0 clears, negative: until
  cleared).
- `POST /_emulator/pubsub/drop`: every open Subscribe stream ends now (UNAVAILABLE).
- `POST /_emulator/pubsub/silence` `{"enabled": true}`: open streams go quiet (with
  `"keepalives_only": true` only their keepalives stop); `false` clears both.
- `POST /_emulator/pubsub/hold` `{"match": "GetSchema", "enabled": true}`: matching GetTopic
  and GetSchema calls wait unanswered until `false` releases them.
- `GET /_emulator/pubsub`: open streams (topic, position, pending) and what is armed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from aiohttp import web

from sftriggerd_emulator.control_body import ControlError, read_object
from sftriggerd_emulator.pubsub.errors import SERVICE_UNAVAILABLE
from sftriggerd_emulator.pubsub.service import PubSubService

SERVICE = web.AppKey("pubsub_service", PubSubService)
Body = dict[str, Any]
Handler = Callable[[PubSubService, Body], Body]


def _status(name: Any) -> grpc.StatusCode:
    for code in grpc.StatusCode:
        if code.name == name and code is not grpc.StatusCode.OK:
            return code
    raise ControlError("'status' must name a gRPC status other than OK, e.g. UNAVAILABLE")


def _text(body: Body, key: str, default: str) -> str:
    value = body.get(key, default)
    if not isinstance(value, str) or any(char in value for char in "\r\n\0"):
        raise ControlError(f"'{key}' must be a string without line breaks")
    return value


def fail(service: PubSubService, body: Body) -> Body:
    count = body.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int):
        raise ControlError("'count' must be an integer")
    service.faults.fail(
        count,
        _status(body.get("status", "UNAVAILABLE")),
        _text(body, "error_code", SERVICE_UNAVAILABLE),
        _text(body, "message", "The service is unavailable."),
        _text(body, "match", ""),
    )
    return service.faults.shown()


def drop(service: PubSubService, body: Body) -> Body:
    dropped = len(service.open)
    service.faults.drop()
    for subscription in service.open.values():
        subscription.wake.set()
    return {"dropped": dropped}


def silence(service: PubSubService, body: Body) -> Body:
    enabled = body.get("enabled", True)
    keepalives_only = body.get("keepalives_only", False)
    if not isinstance(enabled, bool) or not isinstance(keepalives_only, bool):
        raise ControlError("'enabled' and 'keepalives_only' must be true or false")
    service.faults.silent = enabled and not keepalives_only
    service.faults.keepalives_off = enabled and keepalives_only
    if not enabled:
        for subscription in service.open.values():
            subscription.wake.set()
    return service.faults.shown()


def hold(service: PubSubService, body: Body) -> Body:
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ControlError("'enabled' must be true or false")
    service.faults.hold(_text(body, "match", "") if enabled else None)
    return service.faults.shown()


def show(service: PubSubService, body: Body) -> Body:
    streams = [
        {
            "topic": subscription.state.topic,
            "position": subscription.state.position,
            "pending_num_requested": subscription.state.pending,
        }
        for subscription in service.open.values()
    ]
    return {"streams": streams, "armed": service.faults.shown()}


def _json_handler(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        try:
            answer = handler(request.config_dict[SERVICE], await read_object(request))
        except ControlError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(answer)

    return handle


def add_routes(app: web.Application) -> None:
    for path, handler in {"fail": fail, "drop": drop, "silence": silence, "hold": hold}.items():
        app.router.add_post(f"/_emulator/pubsub/{path}", _json_handler(handler))
    app.router.add_get("/_emulator/pubsub", _json_handler(show))
