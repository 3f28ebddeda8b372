"""Admin request parameters, read strictly: ASCII digits only, bounded, or a 400 that says why.

`str.isdigit()` is true for `²` and other digits that `int()` refuses, and `int()` itself takes
`٣` or `1_000`; neither decides what a number is here. Names used as filters must be text the
store can hold (no lone surrogates) and of a sane length.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ..errors import SftriggerdError

_DIGITS = re.compile(r"[0-9]{1,18}")  # 18 digits always fit SQLite's 64-bit integers
_NAME_CHARS = 200


class BadRequestError(SftriggerdError):
    """An admin request asks for something malformed; answered 400 with this message."""


def parse_limit(text: str | None, default: int = 100, maximum: int = 1000) -> int:
    if text is None or text == "":
        return default
    if _DIGITS.fullmatch(text) is None or not 1 <= int(text) <= maximum:
        raise BadRequestError(f"limit must be a whole number from 1 to {maximum}")
    return int(text)


def parse_id(text: str, what: str = "delivery") -> int:
    if _DIGITS.fullmatch(text) is None:
        raise BadRequestError(f"{what} id must be a whole number, not {_quoted(text)}")
    return int(text)


def parse_choice(text: str | None, choices: Sequence[str], what: str) -> str | None:
    if text is None or text == "":
        return None
    if text not in choices:
        raise BadRequestError(f"{what} must be one of {', '.join(choices)}")
    return text


def parse_name(text: str | None, what: str) -> str | None:
    """A trigger or endpoint name to filter by; None when absent."""
    if text is None or text == "":
        return None
    if len(text) > _NAME_CHARS or not _encodable(text):
        raise BadRequestError(f"{what} must be a name of at most {_NAME_CHARS} characters")
    return text


def require_known(kind: str, name: str | None, known: Iterable[str]) -> None:
    """A name the configuration does not define is refused, naming those it does: a typo
    must not look like "nothing there"."""
    names = sorted(known)
    if name is not None and name not in names:
        listed = ", ".join(names) if names else f"no {kind}s are configured"
        raise BadRequestError(
            f"no {kind} named {_quoted(name)} in the configuration (known: {listed})"
        )


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _quoted(text: str) -> str:
    shown = text if len(text) <= 40 else text[:39] + "…"
    return repr(shown.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace"))
