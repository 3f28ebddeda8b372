"""The streaming side's `/_emulator/` calls, and the REST push resource of generic channels.

JSON in, JSON out, like the OAuth/REST side's control calls: a request that cannot be honoured
answers 400 `{"error": "..."}`. docs/emulator.md ("Streaming") shows each call.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sftriggerd_emulator.control_body import ControlError, read_object
from sftriggerd_emulator.schema import NAME_PATTERN
from sftriggerd_emulator.streaming.channels import (
    ChannelView,
    change_channel_of,
    is_platform_event,
)
from sftriggerd_emulator.streaming.clients import WakeReason
from sftriggerd_emulator.streaming.endpoint import HUB
from sftriggerd_emulator.streaming.hub import ADMIN_USER_ID, FILL_REPLAY_ID, StreamingHub

Body = dict[str, Any]
Handler = Callable[[StreamingHub, Body, web.Request], Body]
GAP_TYPES = frozenset({"GAP_CREATE", "GAP_UPDATE", "GAP_DELETE", "GAP_UNDELETE", "GAP_OVERFLOW"})
MAX_GENERIC_PAYLOAD = 3_000


def _required(body: Body, key: str, kind: type) -> Any:
    value = body.get(key)
    wrong_bool = isinstance(value, bool) and kind is not bool
    if not isinstance(value, kind) or wrong_bool:
        raise ControlError(f"'{key}' is required and must be {kind.__name__}")
    return value


def forget_clients(hub: StreamingHub, body: Body, request: web.Request) -> Body:
    """Every client is forgotten, as when Salesforce's routing cookie expires."""
    return {"forgotten": hub.clients.forget_all()}


def retention(hub: StreamingHub, body: Body, request: web.Request) -> Body:
    """Drops events below a replay id in every stream, or only in `channel`'s stream."""
    replay_id = _required(body, "drop_before_replay_id", int)
    channel = body.get("channel")
    if channel is None:
        return {"dropped": hub.drop_before(replay_id)}
    view = hub.channels.resolve(channel) if isinstance(channel, str) else None
    if view is None:
        raise ControlError(f"no channel {channel!r}")
    return {"dropped": hub.drop_before(replay_id, stream=view.stream)}


def publish_event(hub: StreamingHub, body: Body, request: web.Request) -> Body:
    name = request.match_info["name"]
    if not NAME_PATTERN.fullmatch(name) or not is_platform_event(name):
        raise ControlError(f"'{name}' is not a platform event name (Name__e)")
    payload = body.get("payload", {})
    if not isinstance(payload, dict):
        raise ControlError("'payload' must be an object")
    event = hub.publish_platform_event(name, payload, ADMIN_USER_ID)
    return {
        "channel": f"/event/{name}",
        "replayId": event.replay_id,
        "EventUuid": event.data["event"]["EventUuid"],
    }


def gap(hub: StreamingHub, body: Body, request: web.Request) -> Body:
    object_name = _required(body, "object", str)
    change_type = _required(body, "change_type", str)
    if change_type not in GAP_TYPES:
        raise ControlError(f"'change_type' must be one of {', '.join(sorted(GAP_TYPES))}")
    record_ids = body.get("record_ids", [])
    if not isinstance(record_ids, list) or not all(isinstance(i, str) for i in record_ids):
        raise ControlError("'record_ids' must be a list of ids")
    if change_type != "GAP_OVERFLOW" and not record_ids:
        raise ControlError("'record_ids' is required for gap events")
    event = hub.publish_gap(object_name, change_type, tuple(record_ids))
    return {"channel": change_channel_of(object_name), "replayId": event.replay_id}


def cut(hub: StreamingHub, body: Body, request: web.Request) -> Body:
    """Ends every held connect at once: dropped connections, or HTTP 500 answers."""
    mode = body.get("mode", "drop")
    if mode not in ("drop", "500"):
        raise ControlError("'mode' must be 'drop' or '500'")
    reason = WakeReason.CUT if mode == "drop" else WakeReason.CUT_500
    return {"cut": hub.clients.interrupt_holds(reason), "mode": mode}


def starve(hub: StreamingHub, body: Body, request: web.Request) -> Body:
    channel = _required(body, "channel", str)
    if body.get("enabled", True):
        hub.starved.add(channel)
    else:
        hub.starved.discard(channel)
        hub.clients.nudge_all()
    return {"starved": sorted(hub.starved)}


def define_channel(hub: StreamingHub, body: Body, request: web.Request) -> Body:
    name = _required(body, "name", str)
    entities = body.get("entities")
    if entities is not None and not (
        isinstance(entities, list) and all(isinstance(e, str) for e in entities)
    ):
        raise ControlError("'entities' must be a list of object names")
    try:
        channel = hub.define_channel(name, entities)
    except ValueError as exc:
        raise ControlError(str(exc)) from exc
    return {"name": channel.name, "id": channel.channel_id}


def list_channels(hub: StreamingHub, body: Body, request: web.Request) -> Body:
    streams = {
        name: {
            "oldest_replay_id": hub.stream(name).oldest_replay_id,
            "latest_replay_id": hub.stream(name).last_replay_id or None,
            "retained": len(hub.stream(name)),
        }
        for name in sorted(hub.streams)
    }
    return {
        "streams": streams,
        "generic": sorted(hub.channels.generic),
        "custom": sorted(hub.channels.custom_cdc),
        "topics": sorted(topic.name for topic in hub.topics.topics()),
        "clients": len(hub.clients.clients()),
        "starved": sorted(hub.starved),
    }


def list_subscribers(hub: StreamingHub, body: Body, request: web.Request) -> Body:
    """Per channel, each subscription's span: subscribed at `first`, last asked at `last`."""
    return {"channels": hub.activity.report()}


def push_generic(hub: StreamingHub, body: Body, request: web.Request) -> Body:
    channel = _required(body, "channel", str)
    payload = _required(body, "payload", str)
    if channel not in hub.channels.generic:
        raise ControlError(f"no generic channel '{channel}'; define it with /_emulator/channels")
    return {"channel": channel, "replayId": hub.publish_generic(channel, payload).replay_id}


def publish_raw(hub: StreamingHub, body: Body, request: web.Request) -> Body:
    """Any message on any existing channel: how hostile or broken messages are made."""
    channel = _required(body, "channel", str)
    data = _required(body, "data", dict)
    view = hub.channels.resolve(channel)
    if view is None:
        raise ControlError(f"no channel {channel!r}")
    entity = body.get("entity")
    if entity is None:
        entity = _entity_of(view, data)
    if not isinstance(entity, str):
        raise ControlError("'entity' must be a string")
    replay_id = body["replay_id"] if "replay_id" in body else FILL_REPLAY_ID
    event = hub.publish_raw(view.stream, entity, data, replay_id)
    return {"channel": channel, "position": event.replay_id, "data": event.data}


def _entity_of(view: ChannelView, data: Body) -> str:
    """Which object a raw change event belongs to, so the channel views admit it."""
    if view.kind != "cdc":
        return view.stream
    if view.entities is not None and len(view.entities) == 1:
        return next(iter(view.entities))
    payload = data.get("payload")
    header = payload.get("ChangeEventHeader") if isinstance(payload, dict) else None
    name = header.get("entityName") if isinstance(header, dict) else None
    if not isinstance(name, str):
        raise ControlError("give 'entity': the channel and the header name no single object")
    return name


def _count_or_seconds(body: Body) -> tuple[int, float]:
    count = body.get("count", 0)
    seconds = body.get("seconds", 0)
    if isinstance(count, bool) or not isinstance(count, int):
        raise ControlError("'count' must be an integer")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise ControlError("'seconds' must be a number of seconds, not negative")
    return count, float(seconds)


def connect_advice(hub: StreamingHub, body: Body, request: web.Request) -> Body:
    """Puts `advice` (any JSON) on the next `count` connect answers."""
    if "advice" not in body:
        raise ControlError("'advice' is required (any JSON value)")
    count, _ = _count_or_seconds({"count": body.get("count", 1)})
    hub.hostile.set_advice(body["advice"], count)
    return hub.hostile.shown()


def unknown_client(hub: StreamingHub, body: Body, request: web.Request) -> Body:
    """Answers connects `403::Unknown client` for `count` connects or `seconds`; the
    clients stay known. A connect held now is answered so at once."""
    count, seconds = _count_or_seconds(body)
    hub.hostile.refuse_unknown(count, seconds)
    if count or seconds:
        hub.clients.interrupt_holds(WakeReason.REFUSED)
    return hub.hostile.shown()


def show_hostile(hub: StreamingHub, body: Body, request: web.Request) -> Body:
    """What is still armed of the advice and unknown-client controls."""
    return hub.hostile.shown()


def _json_handler(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        try:
            answer = handler(request.config_dict[HUB], await read_object(request), request)
        except ControlError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(answer)

    return handle


async def rest_push(request: web.Request) -> web.Response:
    """`POST /services/data/vXX.X/sobjects/StreamingChannel/{id}/push`, as on Salesforce.

    `{id}` is the StreamingChannel record id (or the id `/_emulator/channels` answered); the
    bare channel name (`Notifications` for `/u/Notifications`) is accepted too. Session and
    API usage are checked by the REST layer's middleware before this runs.
    """
    hub = request.config_dict[HUB]
    key = request.match_info["channel"]
    channel = hub.generic_ids.get(key) or f"/u/{key}"
    if channel not in hub.channels.generic:
        body = [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
        return web.json_response(body, status=404)
    try:
        request_body = json.loads(await request.text() or "null")
    except json.JSONDecodeError:
        request_body = None
    events = request_body.get("pushEvents") if isinstance(request_body, dict) else None
    if not isinstance(events, list) or not all(_valid_push(event) for event in events):
        message = "pushEvents must be a list of {payload, userIds}; payload at most 3000 chars"
        return web.json_response([{"message": message, "errorCode": "INVALID_INPUT"}], status=400)
    listeners = sum(channel in client.subscriptions for client in hub.clients.clients())
    answers = []
    for event in events:
        hub.publish_generic(channel, event["payload"])
        online = {user_id: True for user_id in event.get("userIds") or []}
        answers.append({"fanoutCount": listeners, "userOnlineStatus": online})
    return web.json_response(answers)


def _valid_push(event: Any) -> bool:
    if not isinstance(event, dict):
        return False
    payload = event.get("payload")
    return isinstance(payload, str) and len(payload) <= MAX_GENERIC_PAYLOAD


def cdc_selection(hub: StreamingHub, body: Body, request: web.Request) -> Body:
    """Takes objects out of Change Data Capture (`unselected`, replacing the last list): their
    change channel stops existing, on CometD and Pub/Sub alike; `[]` selects all again."""
    unselected = body.get("unselected")
    if not isinstance(unselected, list) or not all(isinstance(n, str) for n in unselected):
        raise ControlError("'unselected' is required and must be a list of object names")
    hub.channels.unselected = frozenset(name.casefold() for name in unselected)
    return {"unselected": sorted(unselected)}


def add_routes(app: web.Application) -> None:
    posts: dict[str, Handler] = {
        "clients/forget": forget_clients,
        "retention": retention,
        "events/{name}": publish_event,
        "gap": gap,
        "cometd/cut": cut,
        "cometd/starve": starve,
        "channels": define_channel,
        "channels/push": push_generic,
        "publish": publish_raw,
        "cometd/advice": connect_advice,
        "cometd/unknown-client": unknown_client,
        "cdc": cdc_selection,
    }
    for path, handler in posts.items():
        app.router.add_post(f"/_emulator/{path}", _json_handler(handler))
    app.router.add_get("/_emulator/channels", _json_handler(list_channels))
    app.router.add_get("/_emulator/subscribers", _json_handler(list_subscribers))
    for path in ("cometd/advice", "cometd/unknown-client"):
        app.router.add_get(f"/_emulator/{path}", _json_handler(show_hostile))
    push = r"/services/data/v{version:\d+\.\d}/sobjects/StreamingChannel/{channel}/push"
    app.router.add_post(push, rest_push)
