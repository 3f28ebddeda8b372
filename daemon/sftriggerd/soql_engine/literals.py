"""Turning literal text into values: string escapes, LIKE patterns, dates and datetimes.

A string literal is kept raw (as written between the quotes) until the parser knows its
use, because `\\%` and `\\_` mean a literal percent sign or underscore inside a LIKE
pattern but stay two characters anywhere else.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone

_SIMPLE_ESCAPES = {
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "b": "\b",
    "f": "\f",
    '"': '"',
    "'": "'",
    "\\": "\\",
}
_LIKE_ESCAPES = frozenset("%_")
_HEX = frozenset("0123456789abcdefABCDEF")

_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,3}))?"
    r"(Z|([+-])([0-9]{2}):([0-9]{2}))"
)


def escape_length(raw: str, index: int) -> int | None:
    """Length of the escape sequence starting at the backslash `raw[index]`, None if illegal."""
    following = raw[index + 1 : index + 2]
    if following in _SIMPLE_ESCAPES or following in _LIKE_ESCAPES:
        return 2
    if following == "u":
        digits = raw[index + 2 : index + 6]
        if len(digits) == 4 and all(char in _HEX for char in digits):
            return 6
    return None


def _string_pieces(raw: str) -> Iterator[tuple[str, bool]]:
    """Each character of a validated raw literal, with whether it was written escaped."""
    index = 0
    while index < len(raw):
        char = raw[index]
        if char != "\\":
            yield char, False
            index += 1
            continue
        length = escape_length(raw, index)
        if length is None:
            raise ValueError(f"illegal escape at {index} in {raw!r}")
        sequence = raw[index + 1 : index + length]
        if sequence[0] == "u":
            yield chr(int(sequence[1:], 16)), True
        else:
            yield _SIMPLE_ESCAPES.get(sequence, sequence), True
        index += length


def decode_string(raw: str) -> str:
    """The value of a string literal used outside LIKE."""
    return "".join(
        "\\" + char if escaped and char in _LIKE_ESCAPES else char
        for char, escaped in _string_pieces(raw)
    )


class LikePattern:
    """What a LIKE pattern matches, case-insensitively, in time linear in the value for each
    `%`: the pieces between `%`s have fixed lengths, so the first must start the value, the
    last end it, and each other is found leftmost after the one before. (A regular expression
    with `.*` for each `%` backtracks in polynomial time on long values that do not match.)"""

    def __init__(self, pieces: list[list[str]]) -> None:
        self._lengths = [len(piece) for piece in pieces]
        self._pieces = [re.compile("".join(piece), re.IGNORECASE | re.DOTALL) for piece in pieces]

    def matches(self, value: str) -> bool:
        if len(self._pieces) == 1:
            return self._pieces[0].fullmatch(value) is not None
        first, *middle, last = self._pieces
        end = len(value) - self._lengths[-1]
        if first.match(value) is None or end < self._lengths[0]:
            return False
        if last.fullmatch(value, end) is None:
            return False
        position = self._lengths[0]
        for piece in middle:
            found = piece.search(value, position, end)
            if found is None:
                return False
            position = found.end()
        return True


def like_pattern(raw: str) -> LikePattern:
    """What the LIKE pattern `raw` matches: its pieces between unescaped `%`s."""
    pieces: list[list[str]] = [[]]
    for char, escaped in _string_pieces(raw):
        if not escaped and char == "%":
            pieces.append([])
        elif not escaped and char == "_":
            pieces[-1].append(".")
        else:
            pieces[-1].append(re.escape(char))
    return LikePattern(pieces)


def parse_date(text: str) -> date | None:
    """A `YYYY-MM-DD` literal, or None when `text` is not a real calendar date."""
    match = _DATE.fullmatch(text)
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def parse_datetime(text: str) -> datetime | None:
    """An unquoted datetime literal (`Z` or `+hh:mm`/`-hh:mm`, optional milliseconds)."""
    match = _DATETIME.fullmatch(text)
    if match is None:
        return None
    zone: timezone = UTC
    if match[8] != "Z":
        offset = timedelta(hours=int(match[10]), minutes=int(match[11]))
        if offset >= timedelta(hours=24):
            return None
        zone = timezone(-offset if match[9] == "-" else offset)
    milliseconds = int((match[7] or "0").ljust(3, "0"))
    try:
        year, month, day, hour, minute, second = (int(match[group]) for group in range(1, 7))
        return datetime(year, month, day, hour, minute, second, milliseconds * 1000, tzinfo=zone)
    except ValueError:
        return None
