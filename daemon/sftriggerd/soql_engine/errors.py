"""The one SOQL error, and the message shapes Salesforce puts in its REST error bodies.

Salesforce prefixes most query errors with the offending line, a caret under the offending
token and its row and column; clients log the whole text, so the emulator reproduces it.
"""

from __future__ import annotations

from typing import Literal

ErrorCode = Literal["MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE"]


class SoqlError(Exception):
    """A query Salesforce would refuse; `error_code` and `message` go into the error body."""

    def __init__(self, error_code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error_code: ErrorCode = error_code
        self.message = message

    def __repr__(self) -> str:
        return f"SoqlError({self.error_code!r}, {self.message!r})"


def locate(text: str, position: int, detail: str) -> str:
    """`detail` behind the line holding `position`, a caret under it and its row and column."""
    row = text.count("\n", 0, position) + 1
    line_start = text.rfind("\n", 0, position) + 1
    line_end = text.find("\n", position)
    line = text[line_start : line_end if line_end >= 0 else len(text)]
    column = position - line_start + 1
    caret = " " * (column - 1) + "^"
    return f"\n{line}\n{caret}\nERROR at Row:{row}:Column:{column}\n{detail}"


def malformed(text: str, position: int, detail: str) -> SoqlError:
    return SoqlError("MALFORMED_QUERY", locate(text, position, detail))


def unexpected_token(text: str, position: int, token_text: str | None) -> SoqlError:
    """`token_text` None means the query ended where more was expected."""
    shown = "<EOF>" if token_text is None else f"'{token_text}'"
    return malformed(text, position, f"unexpected token: {shown}")


def no_such_column(text: str, position: int, field_name: str, object_name: str) -> SoqlError:
    detail = (
        f"No such column '{field_name}' on entity '{object_name}'. If you are attempting to use"
        " a custom field, be sure to append the '__c' after the custom field name. Please"
        " reference your WSDL or the describe call for the appropriate names."
    )
    return SoqlError("INVALID_FIELD", locate(text, position, detail))


def unsupported_object(text: str, position: int, object_name: str) -> SoqlError:
    detail = (
        f"sObject type '{object_name}' is not supported. If you are attempting to use a custom"
        " object, be sure to append the '__c' after the entity name. Please reference your"
        " WSDL or the describe call for the appropriate names."
    )
    return SoqlError("INVALID_TYPE", locate(text, position, detail))


def wrong_value_type(
    text: str, position: int, field_name: str, type_name: str, *, needs_quotes: bool
) -> SoqlError:
    """A literal of the wrong type for the field; quoting a date or datetime is a syntax error."""
    quotes = "should be enclosed in quotes" if needs_quotes else "should not be enclosed in quotes"
    detail = (
        f"value of filter criterion for field '{field_name}' must be of type {type_name}"
        f" and {quotes}"
    )
    code: ErrorCode = "MALFORMED_QUERY" if type_name in ("dateTime", "date") else "INVALID_FIELD"
    return SoqlError(code, locate(text, position, detail))
