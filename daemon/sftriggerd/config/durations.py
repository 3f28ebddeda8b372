"""Durations as operators write them: `500ms`, `30s`, `5m`, `2h`, `3d`, or combined `1h30m`."""

from __future__ import annotations

import re
from datetime import timedelta

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")
# Longer is a typo, and would overflow the time arithmetic it takes part in (now + max_age).
MAX_DURATION = timedelta(days=100 * 365)


def parse_duration(text: str) -> timedelta:
    """Parses a duration; raises ValueError with a message fit for the operator."""
    compact = text.strip()
    if not _WHOLE.fullmatch(compact):
        raise ValueError(f"'{text}' is not a duration; write it like 500ms, 30s, 5m, 2h or 3d")
    seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(compact))
    if not seconds <= MAX_DURATION.total_seconds():  # also catches inf from 400 digits
        raise ValueError(f"'{text[:40]}' is longer than {MAX_DURATION.days // 365} years")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling, so `format_duration(parse_duration(s))` reads naturally."""
    total_ms = round(value.total_seconds() * 1000)
    if total_ms == 0:
        return "0s"
    parts: list[str] = []
    for unit, size_ms in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        count, total_ms = divmod(total_ms, size_ms)
        if count:
            parts.append(f"{count}{unit}")
    if total_ms:
        parts.append(f"{total_ms}ms")
    return "".join(parts)
