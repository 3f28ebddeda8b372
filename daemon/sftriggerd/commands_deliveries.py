"""`deliveries show`, and the rules every store command reads its arguments by.

One rule per kind of argument, the same as the admin API's: a `--limit` is a whole number
from 1 to 1000, an id is ASCII digits, and an endpoint or trigger name must be one the
configuration defines (an error, with the known names, rather than an empty answer).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable

from .admin import params
from .admin.delivery_view import detail_json
from .admin.params import BadRequestError, parse_id, parse_limit
from .commands import with_store
from .config import Settings
from .errors import UsageError

MAX_LIMIT = 1000


def limit_arg(text: str) -> int:
    """argparse type of `--limit`: argparse exits 2 with the message."""
    try:
        if text == "":
            raise BadRequestError("")
        return parse_limit(text, maximum=MAX_LIMIT)
    except BadRequestError:
        raise argparse.ArgumentTypeError(
            f"must be a whole number from 1 to {MAX_LIMIT}, not {text!r}"
        ) from None


def delivery_id_arg(text: str) -> int:
    try:
        return parse_id(text)
    except BadRequestError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def require_known(kind: str, name: str | None, known: Iterable[str]) -> None:
    """A name the configuration does not define is a usage error naming those it does."""
    try:
        params.require_known(kind, name, known)
    except BadRequestError as exc:
        raise UsageError(str(exc)) from None


def require_endpoint(settings: Settings, name: str | None) -> None:
    require_known("endpoint", name, (endpoint.name for endpoint in settings.endpoints))


async def show_delivery(settings: Settings, delivery_id: int, as_json: bool) -> str:
    detail = await with_store(settings, lambda store: store.get_delivery_detail(delivery_id))
    if detail is None:
        raise UsageError(f"no delivery {delivery_id}")
    fields = detail_json(detail)
    if as_json:
        return json.dumps(fields, indent=2, ensure_ascii=False)
    return format_detail(fields)


def format_detail(fields: dict[str, object]) -> str:
    shown = ("status", "endpoint", "trigger", "event_id", "attempts", "created_at")
    lines = [f"delivery {fields['id']}"]
    lines += [f"  {key}: {_text(fields[key])}" for key in shown]
    lines += [f"  {key}: {_text(fields[key])}" for key in ("next_attempt_at", "last_error")]
    history = fields["attempt_history"]
    assert isinstance(history, list)
    lines.append(f"attempts ({len(history)}, oldest first):")
    for number, attempt in enumerate(history, start=1):
        duration = "-" if attempt["duration_ms"] is None else f"{attempt['duration_ms']} ms"
        outcome = attempt["error"] or f"HTTP {attempt['status']}"
        lines.append(f"  {number}. {attempt['at']}  {duration}  {outcome}")
        if attempt["answer"]:
            lines.append(f"     answer: {json.dumps(attempt['answer'], ensure_ascii=False)}")
        if attempt["next_attempt_at"]:
            lines.append(f"     next attempt at {attempt['next_attempt_at']}")
    lines.append("event:")
    lines.append(json.dumps(fields["event"], indent=2, ensure_ascii=False))
    return "\n".join(lines)


def _text(value: object) -> str:
    return "-" if value is None or value == "" else str(value)
