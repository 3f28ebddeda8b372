"""SOQL literals and names, so no query is built by pasting unchecked text."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*")
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
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return "'" + "".join(_ESCAPES.get(char, char) for char in value) + "'"


def format_datetime(value: datetime) -> str:
    """`2026-01-02T03:04:05Z`: SOQL rejects quoted datetimes and naive ones are ambiguous."""
    if value.tzinfo is None:
        raise ValueError("a SOQL datetime needs a time zone")
    utc = value.astimezone(UTC)
    if utc.microsecond:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def identifier(name: str) -> str:
    """An object or field name, checked, for the parts of a query that cannot be literals."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"'{name}' is not a valid SOQL name")
    return name


_RECORD_ID = re.compile(r"[A-Za-z0-9]{15}([A-Za-z0-9]{3})?")


def record_id(value: str) -> str:
    """A 15- or 18-character Salesforce id, checked before it goes into a URL or a query."""
    if not _RECORD_ID.fullmatch(value):
        raise ValueError(f"'{value}' is not a Salesforce record id")
    return value


def parse_datetime(text: str) -> datetime:
    """Salesforce's `2013-05-20T20:49:32.000+0000` (and ISO forms) as an aware datetime."""
    cleaned = text.strip()
    if cleaned.endswith("Z"):
        cleaned = cleaned[:-1] + "+00:00"
    elif re.search(r"[+-]\d{4}$", cleaned):
        cleaned = f"{cleaned[:-2]}:{cleaned[-2:]}"
    parsed = datetime.fromisoformat(cleaned)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
