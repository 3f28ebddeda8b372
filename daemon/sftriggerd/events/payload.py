"""The webhook body of CONTRACT §3, built once at ingest so every attempt sends the same bytes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from .model import Event


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


def encode_body(event: Event) -> bytes:
    # Compact and UTF-8: the signature covers these exact bytes.
    return json.dumps(build_body(event), separators=(",", ":"), ensure_ascii=False).encode()
