"""The endpoint check: one signed `sftriggerd.ping` POST per endpoint, signed and sent by the
daemon's own code, and the answer shown. Nothing is stored: the ping is no event."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import aiohttp

from ..config.settings import EndpointSettings
from ..delivery.answers import Answer
from ..delivery.outcome import snippet
from ..delivery.sender import post_webhook
from ..delivery.signing import Signer
from ..urls import strip_userinfo
from .checks import Check, failed, ok

PING_TYPE = "sftriggerd.ping"


def ping_body(endpoint: EndpointSettings) -> bytes:
    return json.dumps(
        {
            "type": PING_TYPE,
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "data": {"endpoint": endpoint.name, "note": "sftriggerd doctor: a test, no event"},
        },
        separators=(",", ":"),
    ).encode()


async def check_endpoint(
    http: aiohttp.ClientSession, endpoint: EndpointSettings, secrets: list[str]
) -> Check:
    name = f"endpoint {endpoint.name}"
    url = strip_userinfo(endpoint.url)
    body = ping_body(endpoint)
    message_id = f"msg_doctor_{uuid.uuid4().hex}"
    headers = Signer(endpoint.secret_keys, endpoint.headers).headers(
        message_id, int(time.time()), body
    )
    result = await post_webhook(http, endpoint.url, headers, body, endpoint.timeout)
    if not isinstance(result, Answer):
        return failed(
            name,
            f"{url}: no answer ({result.kind}): {result.error}",
            "check the endpoint's url, that the receiver runs, and the network between",
        )
    text = snippet(result.body, secrets)
    answered = f"HTTP {result.status}" + (f": {text}" if text else "")
    if 200 <= result.status < 300:
        return ok(name, f"{url}: signed {PING_TYPE} answered {answered}")
    fix = (
        "the receiver must verify the signature with the endpoint's secret"
        if result.status in (400, 401, 403)
        else "the receiver must answer 2xx to a webhook it accepts (a ping included)"
    )
    return failed(name, f"{url}: signed {PING_TYPE} answered {answered}", fix)
