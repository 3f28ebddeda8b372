"""The webhook body, built once at ingest so every attempt sends the same bytes.

The body is compact UTF-8 JSON. Salesforce text may hold a lone UTF-16 surrogate (half of
an emoji cut by a truncation, or a `\\ud83d` escape on its own), which Python keeps in a
`str` but UTF-8 cannot carry: such a character is written as its JSON escape instead, so
the body is valid JSON whose decoded text is exactly the received one. Everything else,
including characters outside the BMP, is written as UTF-8.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from .model import Event
from .normalise import MalformedMessage

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# How much of an unusable message a poison event keeps (characters).
POISON_TEXT_LIMIT = 16_384


class UnencodableEvent(MalformedMessage):
    """An event whose body cannot be written as JSON (a value JSON has no form for: NaN,
    infinity, an integer too long to write, a nesting too deep). Ingest keeps it as poison."""


def format_time(value: datetime) -> str:
    """`2026-11-28T10:15:02.000Z`: UTC with milliseconds, as Salesforce writes times."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def build_body(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "trigger": event.trigger,
        "object": event.object,
        "change": event.change,
        "record_id": event.record_id,
        "occurred_at": format_time(event.occurred_at),
        "source": event.source,
        "changed_fields": list(event.changed_fields),
        "record": event.record,
        "raw": event.raw,
    }


def _escape_surrogate(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def escape_lone_surrogates(text: str) -> str:
    """`text` with every surrogate code point written as a JSON `\\uXXXX` escape. Only valid
    inside JSON strings, where a JSON encoder puts every character of the input text."""
    return _LONE_SURROGATE.sub(_escape_surrogate, text)


def encode_body(event: Event) -> bytes:
    """The exact bytes the signature covers; raises `UnencodableEvent` when the event has a
    value JSON cannot represent."""
    try:
        text = json.dumps(
            build_body(event), separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError, RecursionError, OverflowError) as exc:
        raise UnencodableEvent(f"event {event.id} cannot be written as JSON: {exc}") from None
    return escape_lone_surrogates(text).encode()


def poison_text(message: object, limit: int = POISON_TEXT_LIMIT) -> str:
    """A message as text for a poison event: JSON where it can be written as JSON, its repr
    otherwise, at most `limit` characters, and always storable (no lone surrogates)."""
    try:
        text = json.dumps(message, ensure_ascii=False, default=repr)
    except (TypeError, ValueError, RecursionError, OverflowError):
        try:
            text = repr(message)
        except (ValueError, RecursionError):
            text = f"<{type(message).__name__} that cannot be shown>"
    return storable_text(text, limit)


def storable_text(text: str, limit: int = POISON_TEXT_LIMIT) -> str:
    """`text` cut to `limit` characters (saying how many were cut), lone surrogates escaped,
    so that any store can keep it."""
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text) - limit} more characters)"
    return escape_lone_surrogates(text)
