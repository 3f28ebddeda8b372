"""What every call under `/services/data/vXX.X/` goes through, in Salesforce's order.

Injected delay and failure first (they stand for the network and the load balancer; a
failure may carry any `Retry-After` text), then the session (401 INVALID_SESSION_ID), then
the daily allocation (403 REQUEST_LIMIT_EXCEEDED), then the handler. Every answer, error or
not, carries `Sforce-Limit-Info`, and every error is Salesforce's JSON array. The version
list at `/services/data/` is outside all of this, as on a real org.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from sftriggerd_emulator.changes import Writer, rest_origin
from sftriggerd_emulator.errors import LIMIT_EXCEEDED, ApiError, injected_failure, invalid_session
from sftriggerd_emulator.parts import parts_of

API_PATH = re.compile(r"/services/data/v(\d+\.\d)(/|$)")
VERSION = r"{version:\d+\.\d}"
SUPPORTED_VERSIONS = tuple(f"{major}.0" for major in range(37, 67))

WRITER = web.RequestKey("sf_writer", Writer)


@web.middleware
async def rest_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    match = API_PATH.match(request.path)
    if match is None:
        return await handler(request)
    parts = parts_of(request)
    delay_s = parts.faults.delay_s("rest")
    if delay_s:
        await asyncio.sleep(delay_s)
    failure = parts.faults.take_failure("rest", request.path_qs)
    try:
        if failure is not None:
            raise injected_failure(failure.status)
        request[WRITER] = _admit(request, match.group(1))
        response = await handler(request)
    except ApiError as exc:
        response = web.json_response(exc.body(), status=exc.status)
    except web.HTTPMethodNotAllowed as exc:
        allowed = ",".join(sorted(exc.allowed_methods))
        refusal = ApiError(
            405,
            "METHOD_NOT_ALLOWED",
            f"HTTP Method '{request.method}' not allowed. Allowed are {allowed}",
        )
        response = web.json_response(refusal.body(), status=405)
    except web.HTTPNotFound:
        refusal = ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        response = web.json_response(refusal.body(), status=404)
    response.headers["Sforce-Limit-Info"] = parts.usage.header()
    if failure is not None and failure.retry_after is not None:
        response.headers["Retry-After"] = failure.retry_after
    return response


def _admit(request: web.Request, version: str) -> Writer:
    """Checks session and allocation; counts the call; says who is calling."""
    parts = parts_of(request)
    token = bearer_token(request)
    user_id = None if token is None else parts.sessions.user_for_token(token)
    if token is None or user_id is None:
        raise invalid_session()
    parts.sessions.touch(token)
    if parts.usage.exhausted:
        raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", LIMIT_EXCEEDED)
    parts.usage.count_call()
    parts.ctx.stats["api_calls"] += 1
    return Writer(user_id, rest_origin(version))


def bearer_token(request: web.Request) -> str | None:
    """The token of `Authorization: Bearer <t>` (or the older `OAuth <t>`)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() in ("bearer", "oauth") and token.strip():
        return token.strip()
    return None


def api_version(request: web.Request) -> str:
    return request.match_info["version"]


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or the JSON_PARSER_ERROR Salesforce answers."""
    try:
        body = json.loads(await request.text() or "null")
    except json.JSONDecodeError as exc:
        raise ApiError(400, "JSON_PARSER_ERROR", f"Unexpected character: {exc.msg}") from exc
    if not isinstance(body, dict):
        raise ApiError(
            400,
            "JSON_PARSER_ERROR",
            "Cannot deserialize instance of SObject from a value that is not an object",
        )
    return body


def with_attributes(
    object_name: str, record_id: str, fields: dict[str, Any], version: str
) -> dict[str, Any]:
    """A record as the REST API shows it: `attributes` first, then its fields."""
    url = f"/services/data/v{version}/sobjects/{object_name}/{record_id}"
    return {"attributes": {"type": object_name, "url": url}, **fields}


async def list_versions(request: web.Request) -> web.Response:
    return web.json_response(
        [
            {"label": f"v{version}", "url": f"/services/data/v{version}", "version": version}
            for version in SUPPORTED_VERSIONS
        ]
    )


async def get_limits(request: web.Request) -> web.Response:
    return web.json_response(parts_of(request).usage.limits_resource())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/services/data/", list_versions)
    app.router.add_get("/services/data", list_versions)
    for path in (f"/services/data/v{VERSION}/limits", f"/services/data/v{VERSION}/limits/"):
        app.router.add_get(path, get_limits)
