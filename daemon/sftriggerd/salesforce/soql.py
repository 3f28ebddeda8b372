"""SOQL literals and names, so no query is built by pasting unchecked text.

A value that cannot be written safely is refused with SoqlValueError (a ValueError too)
naming what is wrong, never quoted on a best effort: NaN and infinities, integers past
SOQL's range, text with NUL or other control characters SOQL has no escape for, text with
lone surrogates (not encodable as UTF-8, so the request itself would fail), naive datetimes,
and types SOQL has no literal for.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from ..errors import SftriggerdError


class SoqlValueError(SftriggerdError, ValueError):
    """A value or name that cannot go into a SOQL query or a REST path safely."""


_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*")
# Salesforce names are at most 40 characters (80 with a namespace and a relationship path);
# anything far longer is not a name.
_MAX_IDENTIFIER_CHARS = 255
# SOQL integers are 64-bit; beyond that Salesforce refuses the query.
_MAX_INTEGER = 2**63 - 1
_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}

Literal = str | int | float | bool | datetime | date | None


def literal(value: Literal) -> str:
    """The SOQL spelling of a Python value; datetimes become unquoted UTC literals."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        if abs(value) > _MAX_INTEGER:
            raise SoqlValueError("an integer past 64 bits cannot be a SOQL literal")
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SoqlValueError(f"{value!r} cannot be a SOQL literal")
        # Plain decimal notation: SOQL has no exponent form (1e+20).
        return format(Decimal(repr(value)), "f")
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return _quoted(value)
    raise SoqlValueError(f"a {type(value).__name__} cannot be a SOQL literal")


def _quoted(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise SoqlValueError("text with a lone surrogate cannot be a SOQL literal") from None
    for char in text:
        if char not in _ESCAPES and unicodedata.category(char) == "Cc":
            raise SoqlValueError(
                f"text with the control character U+{ord(char):04X} cannot be a SOQL literal"
            )
    return "'" + "".join(_ESCAPES.get(char, char) for char in text) + "'"


def format_datetime(value: datetime) -> str:
    """`2026-01-02T03:04:05Z`: SOQL rejects quoted datetimes and naive ones are ambiguous."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise SoqlValueError("a SOQL datetime needs a time zone")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise SoqlValueError(f"{value.isoformat()} is out of range in UTC") from None
    text = f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc:%H:%M:%S}"
    if utc.microsecond:
        return f"{text}.{utc.microsecond // 1000:03d}Z"
    return f"{text}Z"


def identifier(name: Any) -> str:
    """An object or field name, checked, for the parts of a query that cannot be literals."""
    if (
        not isinstance(name, str)
        or len(name) > _MAX_IDENTIFIER_CHARS
        or not _IDENTIFIER.fullmatch(name)
    ):
        raise SoqlValueError(f"{_shown(name)} is not a valid SOQL name")
    return name


_RECORD_ID = re.compile(r"[A-Za-z0-9]{15}([A-Za-z0-9]{3})?")


def record_id(value: Any) -> str:
    """A 15- or 18-character Salesforce id, checked before it goes into a URL or a query."""
    if not isinstance(value, str) or not _RECORD_ID.fullmatch(value):
        raise SoqlValueError(f"{_shown(value)} is not a Salesforce record id")
    return value


def parse_datetime(text: Any) -> datetime:
    """Salesforce's `2013-05-20T20:49:32.000+0000` (and ISO forms) as an aware datetime;
    SoqlValueError (a ValueError) for anything else, whatever its type."""
    if not isinstance(text, str) or len(text) > 64:
        raise SoqlValueError(f"{_shown(text)} is not a Salesforce datetime")
    cleaned = text.strip()
    if cleaned.endswith("Z"):
        cleaned = cleaned[:-1] + "+00:00"
    elif re.search(r"[+-][0-9]{4}\Z", cleaned):
        cleaned = f"{cleaned[:-2]}:{cleaned[-2:]}"
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        raise SoqlValueError(f"{_shown(text)} is not a Salesforce datetime") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _shown(value: Any) -> str:
    """A refused value for an error message: its repr, cut short."""
    if not isinstance(value, str):
        return f"a {type(value).__name__}"
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:59] + "…"
