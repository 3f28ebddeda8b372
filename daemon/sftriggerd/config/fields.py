"""Field types and the base class the settings sections share (settings.py, ha.py,
transport.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict
from yarl import URL

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
    _check_host(value, parts.hostname)
    # Kept exactly as written: `/hook/` and `/hook` may be different routes to the receiver.
    return value


def _check_host(value: str, host: str) -> None:
    """Refuses a host the resolver cannot even be asked about ("hooks..example.com", a part
    over 63 characters): the HTTP client raises on it at every request. Encoded as the client
    encodes it (yarl, then the resolver's IDNA codec); the message names the host only, as
    the URL may carry credentials."""
    try:
        encoded = URL(value).raw_host or host
        encoded.encode("idna")
    except UnicodeError:
        raise ValueError(
            f"the host '{host}' cannot be looked up: each part between dots must be 1 to 63"
            " characters"
        ) from None
    except ValueError:
        raise ValueError(f"the host '{host}' is not a valid host name") from None


Duration = Annotated[timedelta, BeforeValidator(_duration)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
