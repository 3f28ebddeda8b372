"""How a record's value meets a literal: type rules, null rules and case-insensitivity.

The emulator keeps no field types, so a field's type is read off the record's Python value.
A literal of the wrong type for it is refused the way Salesforce refuses it, including the
`MALFORMED_QUERY` for a quoted datetime, the mistake a polling client is most likely to make.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sftriggerd.soql_engine.errors import wrong_value_type
from sftriggerd.soql_engine.nodes import (
    Comparison,
    ComparisonOperator,
    FieldRef,
    InList,
    Like,
    Literal,
    Predicate,
)

_OUTCOMES: dict[ComparisonOperator, Callable[[int], bool]] = {
    "=": lambda order: order == 0,
    "!=": lambda order: order != 0,
    "<": lambda order: order < 0,
    "<=": lambda order: order <= 0,
    ">": lambda order: order > 0,
    ">=": lambda order: order >= 0,
}


def matches_comparison(node: Comparison, value: Any, text: str) -> bool:
    literal = node.value.value
    if value is None or literal is None:
        # SOQL treats null as an ordinary value: `!= 'x'` keeps the nulls, `< 5` never does.
        both_null = value is None and literal is None
        if node.operator == "=":
            return both_null
        return node.operator == "!=" and not both_null
    return _OUTCOMES[node.operator](_order(value, node.value, node.field, text))


def matches_in(node: InList, value: Any, text: str) -> bool:
    found = any(_equal(value, literal, node.field, text) for literal in node.values)
    return found != node.negated


def matches_like(node: Like, value: Any, text: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, str):
        _order(value, node.value, node.field, text)  # raises the type error Salesforce gives
        return False
    return node.pattern.matches(value)


def check_literal_types(predicate: Predicate, sample: Any, text: str) -> None:
    """Refuses literals that do not suit the field `sample` (a non-null value of it) came from.

    Checked once per query, before filtering, so a wrong literal is refused even when other
    conditions would have spared every record from comparing against it.
    """
    if sample is None:
        return
    literals = predicate.values if isinstance(predicate, InList) else (predicate.value,)
    for literal in literals:
        if literal.value is not None:
            _comparable(sample, literal, predicate.field, text)


def _equal(value: Any, literal: Literal, field: FieldRef, text: str) -> bool:
    if value is None or literal.value is None:
        return value is None and literal.value is None
    return _order(value, literal, field, text) == 0


def _order(value: Any, literal: Literal, field: FieldRef, text: str) -> int:
    """-1, 0 or 1 as the non-null `value` sorts before, with or after the non-null literal."""
    left, right = _comparable(value, literal, field, text)
    return int(left > right) - int(left < right)


def _comparable(value: Any, literal: Literal, field: FieldRef, text: str) -> tuple[Any, Any]:
    """The pair to compare, after checking that the literal suits the field's type."""
    given = literal.value
    if isinstance(value, bool):
        if isinstance(given, bool):
            return value, given
        type_name, needs_quotes = "boolean", False
    elif isinstance(value, int | float):
        if isinstance(given, int | float) and not isinstance(given, bool):
            return value, given
        type_name, needs_quotes = "double", False
    elif isinstance(value, datetime):
        if isinstance(given, datetime):
            return as_utc(value), given
        if isinstance(given, date):
            # A date literal against a datetime field compares the day, taken in UTC.
            return as_utc(value).date(), given
        type_name, needs_quotes = "dateTime", False
    elif isinstance(value, date):
        if isinstance(given, date) and not isinstance(given, datetime):
            return value, given
        type_name, needs_quotes = "date", False
    elif isinstance(value, str):
        if isinstance(given, str):
            return value.casefold(), given.casefold()
        type_name, needs_quotes = "string", True
    else:
        raise TypeError(f"field {field.name!r} holds an unsupported {type(value).__name__}")
    raise wrong_value_type(text, literal.position, field.name, type_name, needs_quotes=needs_quotes)


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; naive values are taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def sort_key(value: Any) -> tuple[int, Any]:
    """A key ordering values of one field; the leading rank keeps mixed types comparable."""
    if isinstance(value, bool):
        return 0, value
    if isinstance(value, int | float):
        return 1, value
    if isinstance(value, str):
        return 2, value.casefold()
    if isinstance(value, datetime):
        return 4, as_utc(value)
    if isinstance(value, date):
        return 3, value
    raise TypeError(f"cannot order by a {type(value).__name__}")
