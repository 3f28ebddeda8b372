"""Field types and the base class the settings sections share (settings.py, ha.py,
transport.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

from .durations import parse_duration


class Section(BaseModel):
    """A section of the file: unknown keys are errors, values frozen once read."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a duration; write it like 500ms, 30s, 5m, 2h or 3d")
    return parse_duration(value)


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"'{value}' is not an http(s) URL")
    # Kept exactly as written: `/hook/` and `/hook` may be different routes to the receiver.
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
