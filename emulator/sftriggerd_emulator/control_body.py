"""What both sides' `/_emulator/` calls share: their refusal, and reading the JSON object
each takes (an empty body reads as `{}`)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


class ControlError(Exception):
    """A control call whose request cannot be honoured as written."""


async def read_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; ControlError when the body is not one."""
    text = await request.text()
    try:
        body = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ControlError(f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ControlError("the body must be a JSON object")
    return body
