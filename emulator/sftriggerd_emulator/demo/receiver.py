"""A sample webhook receiver that verifies Standard Webhooks signatures, as a consumer would."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

# Standard Webhooks' default tolerance: older or future timestamps are replays or forgeries.
TOLERANCE_S = 300


@dataclass(frozen=True)
class Received:
    body: dict[str, Any]
    verified: bool
    received_at: float


def verify(secret_key: bytes, headers: Any, body: bytes, now: float) -> bool:
    """True when the signature covers `{id}.{timestamp}.{body}` and the timestamp is fresh."""
    message_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > TOLERANCE_S:
        return False
    signed = f"{message_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(secret_key, signed, hashlib.sha256).digest()).decode()
    offered = [part.partition(",")[2] for part in headers.get("webhook-signature", "").split()]
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)


def receiver_app(secret_key: bytes, on_receive: Callable[[Received], None]) -> web.Application:
    async def webhook(request: web.Request) -> web.Response:
        raw = await request.read()
        verified = verify(secret_key, request.headers, raw, time.time())
        if not verified:
            return web.json_response({"error": "bad signature"}, status=401)
        on_receive(Received(body=json.loads(raw), verified=True, received_at=time.time()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    return app
