"""Splitting SOQL text into tokens that remember where they start.

Keywords are not told apart from names here: SOQL keywords are case-insensitive and some
(ORDER, LAST, FIRST) are also legal object or field names, so the parser decides by position.
Characters outside the subset become `other` tokens, which no grammar rule accepts, so the
parser reports the first problem in reading order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from sftriggerd.soql_engine.errors import malformed, unexpected_token
from sftriggerd.soql_engine.literals import escape_length, parse_date, parse_datetime

TokenKind = Literal[
    "ident", "string", "number", "datetime", "date", "op", "(", ")", ",", "other", "eof"
]

_WHITESPACE = frozenset(" \t\r\n\f")
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_DATE_START = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Everything a date or datetime literal may contain, so a bad one is reported whole.
_TEMPORAL_RUN = re.compile(r"[0-9A-Za-z:.+\-]+")
_OPERATORS = ("!=", "<>", "<=", ">=", "=", "<", ">")
_PUNCTUATION: dict[str, TokenKind] = {"(": "(", ")": ")", ",": ","}


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str  # as written; string tokens include their quotes
    position: int  # offset of the first character in the query text

    def is_keyword(self, *words: str) -> bool:
        return self.kind == "ident" and self.text.upper() in words


def tokenize(text: str) -> list[Token]:
    """All tokens of `text`, ending with one `eof` token; raises SoqlError on bad literals."""
    tokens: list[Token] = []
    position = 0
    while True:
        while position < len(text) and text[position] in _WHITESPACE:
            position += 1
        if position >= len(text):
            tokens.append(Token("eof", "", position))
            return tokens
        token = _read_token(text, position)
        tokens.append(token)
        position += len(token.text)


def _read_token(text: str, position: int) -> Token:
    char = text[position]
    if char == "'":
        return _read_string(text, position)
    if _DATE_START.match(text, position):
        return _read_temporal(text, position)
    number = _NUMBER.match(text, position)
    if number:
        return Token("number", number.group(), position)
    name = _IDENT.match(text, position)
    if name:
        return Token("ident", name.group(), position)
    for operator in _OPERATORS:
        if text.startswith(operator, position):
            return Token("op", operator, position)
    return Token(_PUNCTUATION.get(char, "other"), char, position)


def _read_string(text: str, start: int) -> Token:
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == "'":
            return Token("string", text[start : index + 1], start)
        if char != "\\":
            index += 1
            continue
        length = escape_length(text, index)
        if length is None:
            sequence = text[index : index + 2]
            raise malformed(
                text,
                index,
                f"Invalid string literal '{text[start + 1 : index + 2]}'. "
                f"Illegal character sequence '{sequence}' in string literal.",
            )
        index += length
    raise malformed(text, start, "mismatched character '<EOF>' expecting '''")


def _read_temporal(text: str, start: int) -> Token:
    run = _TEMPORAL_RUN.match(text, start)
    assert run is not None  # _DATE_START matched here, so the run has at least ten characters
    literal = run.group()
    if "T" in literal:
        if parse_datetime(literal) is not None:
            return Token("datetime", literal, start)
    elif parse_date(literal) is not None:
        return Token("date", literal, start)
    raise unexpected_token(text, start, literal)
