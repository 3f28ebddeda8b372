"""Text from outside as PostgreSQL stores it."""

from __future__ import annotations

import re
from typing import Any

# NUL, which a text column refuses, and lone surrogates (a JSON `\ud800` escape decodes to
# one), which UTF-8 cannot encode.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def readable(value: str) -> str:
    """`value` as a text column can hold it: U+FFFD where a character could not be stored.
    Used on ids too, on the way in and in lookups alike, so they still match."""
    return _UNSTORABLE.sub("\ufffd", value)


def optional_readable(value: str | None) -> str | None:
    return None if value is None else readable(value)


def storable_json(value: Any) -> Any:
    """A JSON value (a checkpoint's position) with every string, keys too, made `readable`:
    `jsonb` refuses `\\u0000` and lone surrogates, and a position holding one (a polled
    record Id from outside) would otherwise fail every ingest of its trigger for good."""
    if isinstance(value, str):
        return readable(value)
    if isinstance(value, dict):
        return {readable(str(key)): storable_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(item) for item in value]
    return value
