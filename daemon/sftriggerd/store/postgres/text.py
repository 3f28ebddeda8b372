"""Text from outside as PostgreSQL stores it."""

from __future__ import annotations


def readable(value: str) -> str:
    """`value` without NUL characters, which a PostgreSQL text column refuses: free text
    (an error, an answer, a poison message) is kept, with U+FFFD where a NUL was."""
    return value.replace("\x00", "\ufffd")


def optional_readable(value: str | None) -> str | None:
    return None if value is None else readable(value)
