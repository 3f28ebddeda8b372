"""Points in time as operators write them on the command line and in admin requests: an ISO
8601 time with its zone (`2026-12-01T10:00:00Z`), or a duration meaning that long ago
(`2h`: two hours before now). Pure; `ValueError` with a message fit for the operator."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from .config.durations import parse_duration

_MAX_CHARS = 64
_OFFSET_WITHOUT_COLON = re.compile(r"[+-][0-9]{4}\Z")


def parse_moment(text: str, now: datetime) -> datetime:
    """The time `text` names, in UTC. A time without a zone is refused: on a server whose
    clock runs in another zone than the operator's, a guess would be hours off."""
    cleaned = text.strip()
    if not cleaned or len(cleaned) > _MAX_CHARS:
        raise ValueError(_usage(text))
    if cleaned[0].isdigit() and cleaned[-1] in "smhd" and ":" not in cleaned:
        try:
            return now.astimezone(UTC) - parse_duration(cleaned)
        except (ValueError, OverflowError):
            raise ValueError(_usage(text)) from None
    if cleaned[-1] in "zZ":
        cleaned = cleaned[:-1] + "+00:00"
    elif _OFFSET_WITHOUT_COLON.search(cleaned):
        cleaned = f"{cleaned[:-2]}:{cleaned[-2:]}"
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        raise ValueError(_usage(text)) from None
    if parsed.tzinfo is None:
        raise ValueError(f"{_shown(text)} has no time zone; add Z for UTC or an offset")
    try:
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"{_shown(text)} is out of range") from None


def _usage(text: str) -> str:
    return (
        f"{_shown(text)} is not a time; write 2026-12-01T10:00:00Z (with its zone) or a"
        " duration meaning that long ago, such as 2h or 3d"
    )


def _shown(text: str) -> str:
    shown = repr(text)
    return shown if len(shown) <= 60 else shown[:59] + "…"
