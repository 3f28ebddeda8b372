"""`POST /cometd/<version>[/<meta>]`: the HTTP envelope around the Bayeux exchange.

In Salesforce's order: injected delay and failure first (they stand for the network and the
load balancer), then the version in the path, the request size, the JSON body; everything
after that is answered in-band with HTTP 200 (see `bayeux.py`). CometD's Java and JavaScript
clients append the message type to the URL (`/cometd/60.0/connect`), others post to the bare
URL; both are served.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from sftriggerd_emulator.rest import SUPPORTED_VERSIONS, bearer_token
from sftriggerd_emulator.streaming.bayeux import BROWSER_COOKIE, CutConnection, Exchange
from sftriggerd_emulator.streaming.hub import StreamingHub

HUB = web.AppKey("streaming_hub", StreamingHub)

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
MAX_REQUEST_BYTES = 32_768
MIN_VERSION = 37.0
ROUTING_COOKIE = "sfdc-stream"
_VERSION = re.compile(r"\d+\.\d+")


class _Refusal(Exception):
    """An answer outside Bayeux: an HTTP status with a plain-text body."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text

    def response(self) -> web.Response:
        return web.Response(status=self.status, text=self.text, content_type="text/plain")


def _check_version(request: web.Request) -> None:
    version = request.match_info.get("version", "")
    if not version:
        latest = SUPPORTED_VERSIONS[-1]
        raise _Refusal(400, f"API version in the URI is mandatory. URI format: '/cometd/{latest}'")
    if not _VERSION.fullmatch(version) or float(version) < MIN_VERSION:
        raise _Refusal(
            400, "Unsupported API version. Only API versions '37.0' and later are supported."
        )


async def _read_messages(request: web.Request) -> list[dict[str, Any]]:
    """The batch: a JSON array (or one object), also accepted form-encoded as `message=`."""
    if (request.content_length or 0) > MAX_REQUEST_BYTES:
        raise _Refusal(413, "Maximum Request Size Exceeded")
    body = await request.read()
    if len(body) > MAX_REQUEST_BYTES:
        raise _Refusal(413, "Maximum Request Size Exceeded")
    text = body.decode("utf-8", errors="replace")
    if request.content_type == "application/x-www-form-urlencoded":
        text = parse_qs(text).get("message", [""])[0]
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Refusal(400, f"Invalid Bayeux message: {exc.msg}") from exc
    if isinstance(parsed, dict):
        parsed = [parsed]
    if not isinstance(parsed, list) or not all(isinstance(item, dict) for item in parsed):
        raise _Refusal(400, "Invalid Bayeux message: expected an array of objects")
    return parsed


def _fault_response(status: int) -> web.Response:
    """What a load balancer in the way answers: HTML, never JSON."""
    page = f"<html><body><h1>{status}</h1>The service is unavailable.</body></html>"
    return web.Response(status=status, text=page, content_type="text/html")


async def handle_cometd(request: web.Request) -> web.StreamResponse:
    hub = request.config_dict[HUB]
    faults = hub.ctx.faults
    delay_s = faults.delay_s("cometd")
    if delay_s:
        await asyncio.sleep(delay_s)
    failure = faults.take_failure("cometd", request.path_qs)
    if failure is not None:
        response = _fault_response(failure.status)
        if failure.retry_after is not None:
            response.headers["Retry-After"] = failure.retry_after
        return response
    try:
        _check_version(request)
        messages = await _read_messages(request)
    except _Refusal as refusal:
        return refusal.response()
    exchange = Exchange(
        hub,
        bearer_token(request),
        request.cookies.get(BROWSER_COOKIE),
        lambda: request.transport is None or request.transport.is_closing(),
    )
    try:
        replies = await exchange.answer(messages)
    except CutConnection as cut:
        if cut.status is not None:
            return _fault_response(cut.status)
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=500)  # never sent: the connection is gone
    response = web.Response(
        body=json.dumps(replies, separators=(",", ":")).encode(),
        headers={"Content-Type": JSON_CONTENT_TYPE},
    )
    if exchange.new_browser_id is not None:
        response.set_cookie(BROWSER_COOKIE, exchange.new_browser_id, path="/", httponly=True)
    if any(reply.get("channel") == "/meta/handshake" for reply in replies):
        # The load balancer's routing cookie; a new one per handshake, as it rotates.
        response.set_cookie(ROUTING_COOKIE, "!" + secrets.token_urlsafe(24), path="/")
    return response


def add_routes(app: web.Application) -> None:
    for path in ("/cometd", "/cometd/", "/cometd/{version}", "/cometd/{version}/{meta:.*}"):
        app.router.add_post(path, handle_cometd)
