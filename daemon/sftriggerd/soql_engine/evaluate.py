"""Running a parsed query over an object's records: check fields, filter, sort, page, project."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from functools import partial
from typing import Any

from sftriggerd.soql_engine.compare import (
    check_literal_types,
    matches_comparison,
    matches_in,
    matches_like,
    sort_key,
)
from sftriggerd.soql_engine.errors import SoqlError, no_such_column, unsupported_object
from sftriggerd.soql_engine.nodes import (
    And,
    Comparison,
    Condition,
    InList,
    Like,
    Not,
    Or,
    OrderItem,
    Query,
    predicates,
)


class _Row:
    """A record that answers to field names in any letter case, as SOQL field names do."""

    def __init__(self, record: Mapping[str, Any]) -> None:
        self.record = record
        self._keys = {key.casefold(): key for key in record}

    def key(self, name: str) -> str | None:
        """The record's own spelling of `name`, or None when the record lacks it."""
        return self._keys.get(name.casefold())

    def get(self, name: str) -> Any:
        key = self.key(name)
        return None if key is None else self.record[key]


def run_query(
    query: Query, records: Iterable[Mapping[str, Any]], known_fields: Collection[str]
) -> list[dict[str, Any]]:
    """The records `query` selects, in its order and page, projected to its SELECT list.

    `known_fields` are the object's field names; naming any other field raises
    SoqlError("INVALID_FIELD", ...). For SELECT COUNT() the matching records come back whole.
    """
    spellings = {name.casefold(): name for name in known_fields}
    _check_fields(query, spellings)
    rows = list(map(_Row, records))
    _check_literals(query, rows)
    rows = [row for row in rows if _matches(query, row)]
    _sort(rows, query.order_by)
    start = query.offset or 0
    page = rows[start:] if query.limit is None else rows[start : start + query.limit]
    if query.count_only:
        return [dict(row.record) for row in page]
    return [_project(row, query.select, spellings) for row in page]


def unknown_object_error(query: Query) -> SoqlError:
    """The INVALID_TYPE error for a query whose FROM names no object the org has."""
    return unsupported_object(query.text, query.object_position, query.object_name)


def _check_fields(query: Query, spellings: Mapping[str, str]) -> None:
    for ref in query.field_refs():
        if ref.name.casefold() not in spellings:
            raise no_such_column(query.text, ref.position, ref.name, query.object_name)


def _check_literals(query: Query, rows: list[_Row]) -> None:
    # The emulator keeps no field types, so the first non-null value stands for the field's.
    if query.where is None:
        return
    samples: dict[str, Any] = {}
    for predicate in predicates(query.where):
        name = predicate.field.name.casefold()
        if name not in samples:
            values = (row.get(name) for row in rows)
            samples[name] = next((value for value in values if value is not None), None)
        check_literal_types(predicate, samples[name], query.text)


def _matches(query: Query, row: _Row) -> bool:
    return query.where is None or _holds(query.where, row, query.text)


def _holds(condition: Condition, row: _Row, text: str) -> bool:
    if isinstance(condition, And):
        return all(_holds(operand, row, text) for operand in condition.operands)
    if isinstance(condition, Or):
        return any(_holds(operand, row, text) for operand in condition.operands)
    if isinstance(condition, Not):
        return not _holds(condition.operand, row, text)
    value = row.get(condition.field.name)
    if isinstance(condition, Comparison):
        return matches_comparison(condition, value, text)
    if isinstance(condition, InList):
        return matches_in(condition, value, text)
    if isinstance(condition, Like):
        return matches_like(condition, value, text)
    raise TypeError(f"unknown condition {condition!r}")


def _sort(rows: list[_Row], order_by: tuple[OrderItem, ...]) -> None:
    # Sorting by the last key first relies on sort stability to get a multi-key order,
    # and leaves rows tied on every key in the order the records came in.
    for item in reversed(order_by):
        rows.sort(key=partial(_item_key, item=item), reverse=item.descending)


def _item_key(row: _Row, item: OrderItem) -> tuple[Any, ...]:
    value = row.get(item.field)
    if value is None:
        # With reverse=True the smallest key ends up last, hence the comparison with descending.
        nulls_sort_low = item.nulls_last == item.descending
        return (0,) if nulls_sort_low else (2,)
    return (1, *sort_key(value))


def _project(row: _Row, select: tuple[str, ...], spellings: Mapping[str, str]) -> dict[str, Any]:
    projected: dict[str, Any] = {}
    for name in select:
        key = row.key(name)
        if key is None:
            projected[spellings[name.casefold()]] = None
        else:
            projected[key] = row.record[key]
    return projected


def condition_holds(condition: Condition, record: Mapping[str, Any], text: str) -> bool:
    """Whether `record` (field names in any letter case, a missing field is null) meets
    `condition`; a literal of the wrong type for a field's value raises SoqlError."""
    return _holds(condition, _Row(record), text)
