"""The `/_emulator/` admin calls of the OAuth/REST side: faults, time, limits, stats, data.

JSON in, JSON out; a bad request answers 400 `{"error": "..."}`. docs/emulator.md shows each
call with its request and answer. The streaming side registers its own calls
(`clients/forget`, `retention`, `events/{Name}`, ...) next to these.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

from aiohttp import web
from pydantic import ValidationError

from sftriggerd_emulator.changes import Writer
from sftriggerd_emulator.clock import format_datetime, parse_datetime
from sftriggerd_emulator.control_body import ControlError, read_object
from sftriggerd_emulator.cursors import TIE_ORDERS, TieOrder
from sftriggerd_emulator.errors import ApiError
from sftriggerd_emulator.faults import SURFACES, Surface
from sftriggerd_emulator.identity import UserSpec
from sftriggerd_emulator.limits import HEADER_STYLES, HeaderStyle
from sftriggerd_emulator.oauth import GRANT_NAMES
from sftriggerd_emulator.parts import EmulatorParts, parts_of

# Writes made through the control calls look like changes made in the UI: no API origin.
_CONTROL_ORIGIN = ""

Body = dict[str, Any]
Handler = Callable[[EmulatorParts, Body, web.Request], Body]
_MISSING = object()


def _field(body: Body, key: str, kinds: tuple[type, ...], default: Any = _MISSING) -> Any:
    """`body[key]` checked against `kinds`; null or absent gives `default` when there is one."""
    value = body.get(key)
    if value is None:
        if default is _MISSING:
            raise ControlError(f"'{key}' is required")
        return default
    wrong_bool = isinstance(value, bool) and bool not in kinds
    if wrong_bool or not isinstance(value, kinds):
        raise ControlError(f"'{key}' must be {' or '.join(kind.__name__ for kind in kinds)}")
    return value


def _surface(body: Body) -> Surface:
    surface = _field(body, "surface", (str,))
    if surface not in SURFACES:
        raise ControlError(f"'surface' must be one of {', '.join(SURFACES)}")
    result: Surface = surface
    return result


def _moment(text: str, key: str) -> Any:
    try:
        return parse_datetime(text)
    except ValueError as exc:
        raise ControlError(f"'{key}': {exc}") from exc


def expire_sessions(parts: EmulatorParts, body: Body, request: web.Request) -> Body:
    """Ends the given session, or every one; with only a refresh token, revokes just that."""
    token = _field(body, "access_token", (str,), default="")
    refresh_token = _field(body, "refresh_token", (str,), default="")
    answer: Body = {"expired": 0}
    if token or not refresh_token:
        answer["expired"] = parts.sessions.expire(token or None)
    if refresh_token:
        answer["refresh_token_revoked"] = parts.directory.revoke_refresh_token(refresh_token)
    return answer


def fail(parts: EmulatorParts, body: Body, request: web.Request) -> Body:
    surface = _surface(body)
    status = _field(body, "status", (int,), default=503)
    if not 100 <= status <= 599:
        raise ControlError("'status' must be an HTTP status")
    retry_after = _field(body, "retry_after", (str,), default=None)
    if retry_after is not None and any(char in retry_after for char in "\r\n\0"):
        raise ControlError("'retry_after' must not contain line breaks or NUL")
    after = _field(body, "after", (int,), default=1)
    if after < 1:
        raise ControlError("'after' counts from 1 (the next matching request)")
    parts.faults.fail(
        surface,
        _field(body, "count", (int,), default=1),
        status,
        retry_after=retry_after,
        after=after,
        match=_field(body, "match", (str,), default=""),
    )
    return {"armed": parts.faults.pending()}


def show_faults(parts: EmulatorParts, body: Body, request: web.Request) -> Body:
    return {"armed": parts.faults.pending()}


def query_order(parts: EmulatorParts, body: Body, request: web.Request) -> Body:
    """How query answers order rows that the query's ORDER BY leaves tied."""
    ties = _field(body, "ties", (str,), default=parts.cursors.ties)
    if ties not in TIE_ORDERS:
        raise ControlError(f"'ties' must be one of {', '.join(TIE_ORDERS)}")
    parts.cursors.ties = cast(TieOrder, ties)
    return {"ties": ties}


def delay(parts: EmulatorParts, body: Body, request: web.Request) -> Body:
    surface = _surface(body)
    seconds = float(_field(body, "seconds", (int, float)))
    if seconds < 0:
        raise ControlError("'seconds' must not be negative")
    parts.faults.delay(surface, seconds, _field(body, "count", (int,), default=1))
    return {"armed": parts.faults.pending()}


def modstamp(parts: EmulatorParts, body: Body, request: web.Request) -> Body:
    text = _field(body, "freeze_at", (str,), default="")
    parts.clock.freeze_stamps(_moment(text, "freeze_at") if text else None)
    frozen = parts.clock.frozen_stamp
    return {"freeze_at": None if frozen is None else format_datetime(frozen)}


def late_commit(parts: EmulatorParts, body: Body, request: web.Request) -> Body:
    """Writes a record now, stamped at `stamp` (in the past): a transaction that committed late."""
    object_name = _field(body, "object", (str,))
    fields = _field(body, "fields", (dict,), default={})
    stamp = _moment(_field(body, "stamp", (str,)), "stamp").replace(microsecond=0)
    if stamp > parts.clock.now():
        raise ControlError("'stamp' must not be in the future")
    writer = Writer(parts.directory.admin.user_id, _CONTROL_ORIGIN)
    record_id = _field(body, "id", (str,), default="")
    if record_id:
        parts.org.update(object_name, record_id, fields, writer, stamp=stamp)
    else:
        [record_id] = parts.org.create([(object_name, fields)], writer, stamp=stamp)
    return {"id": record_id, "SystemModstamp": format_datetime(stamp)}


def undelete(parts: EmulatorParts, body: Body, request: web.Request) -> Body:
    writer = Writer(parts.directory.admin.user_id, _CONTROL_ORIGIN)
    info = request.match_info
    record_id = parts.org.undelete(info["object"], info["id"], writer)
    return {"id": record_id, "success": True}


def limits(parts: EmulatorParts, body: Body, request: web.Request) -> Body:
    usage = parts.usage
    usage.daily_max = _field(body, "max", (int,), default=usage.daily_max)
    usage.used = _field(body, "used", (int,), default=usage.used)
    style = _field(body, "header", (str,), default=usage.style)
    if style not in HEADER_STYLES:
        raise ControlError(f"'header' must be one of {', '.join(HEADER_STYLES)}")
    header_style: HeaderStyle = style
    usage.style = header_style
    return _usage(parts)


def show_limits(parts: EmulatorParts, body: Body, request: web.Request) -> Body:
    return _usage(parts)


def _usage(parts: EmulatorParts) -> Body:
    usage = parts.usage
    return {
        "max": usage.daily_max,
        "used": usage.used,
        "remaining": usage.remaining,
        "header": usage.style,
    }


# Shown as 0 before they first happen, so a test can subtract a before from an after.
_BASE_COUNTERS = (
    "logins",
    "login_failures",
    "api_calls",
    "queries",
    "query_more",
    "handshakes",
    "connects",
    "unknown_client_refusals",
)


def stats(parts: EmulatorParts, body: Body, request: web.Request) -> Body:
    return {
        **dict.fromkeys(_BASE_COUNTERS, 0),
        **dict(parts.ctx.stats),
        "api_usage": _usage(parts),
        "live_sessions": parts.sessions.live_count(),
        "now": format_datetime(parts.clock.now()),
    }


def clock(parts: EmulatorParts, body: Body, request: web.Request) -> Body:
    advance_s = _field(body, "advance_s", (int, float), default=0)
    try:
        parts.clock.advance(float(advance_s))
    except ValueError as exc:
        raise ControlError(str(exc)) from exc
    return {"now": format_datetime(parts.clock.now()), "offset_s": parts.clock.offset_s}


def grants(parts: EmulatorParts, body: Body, request: web.Request) -> Body:
    blocked = _field(body, "blocked", (list,))
    unknown = [name for name in blocked if name not in GRANT_NAMES.values()]
    if unknown:
        raise ControlError(f"unknown grants {unknown}; known: {sorted(GRANT_NAMES.values())}")
    parts.connected_app.blocked_grants = set(blocked)
    return {"blocked": sorted(parts.connected_app.blocked_grants)}


def add_user(parts: EmulatorParts, body: Body, request: web.Request) -> Body:
    """Adds (or replaces) a user, as an entry of the `--users` file would."""
    try:
        spec = UserSpec.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        raise ControlError(problems) from exc
    user = parts.directory.add(spec)
    return {"username": user.username, "user_id": user.user_id}


def _json_handler(handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        try:
            answer = handler(parts_of(request), await read_object(request), request)
        except ControlError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except ApiError as exc:
            return web.json_response(
                {"error": exc.message, "errorCode": exc.error_code}, status=exc.status
            )
        return web.json_response(answer)

    return handle


def add_routes(app: web.Application) -> None:
    posts: dict[str, Handler] = {
        "sessions/expire": expire_sessions,
        "fail": fail,
        "delay": delay,
        "modstamp": modstamp,
        "late-commit": late_commit,
        "undelete/{object}/{id}": undelete,
        "limits": limits,
        "clock": clock,
        "grants": grants,
        "users": add_user,
        "query": query_order,
    }
    for path, handler in posts.items():
        app.router.add_post(f"/_emulator/{path}", _json_handler(handler))
    app.router.add_get("/_emulator/stats", _json_handler(stats))
    app.router.add_get("/_emulator/clock", _json_handler(clock))
    app.router.add_get("/_emulator/limits", _json_handler(show_limits))
    app.router.add_get("/_emulator/fail", _json_handler(show_faults))
    app.router.add_get("/_emulator/query", _json_handler(query_order))
