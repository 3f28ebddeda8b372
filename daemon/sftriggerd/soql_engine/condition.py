"""A WHERE condition on its own, evaluated against one record as Salesforce's REST API and
streaming messages give it: JSON values, datetimes and dates as text.

The daemon uses this for a trigger's `where` on streamed events, so the condition a poll
sends to Salesforce in SOQL narrows streamed changes the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sftriggerd.soql_engine.errors import SoqlError, locate
from sftriggerd.soql_engine.evaluate import condition_holds
from sftriggerd.soql_engine.literals import parse_date, parse_datetime
from sftriggerd.soql_engine.nodes import Condition, InList, Like, predicates
from sftriggerd.soql_engine.parser import parse_where

# Salesforce writes offsets without a colon (`+0000`); the literal grammar wants `+00:00`.
_COMPACT_OFFSET = re.compile(r"(.*T.*[+-][0-9]{2})([0-9]{2})")
# `YYYY-MM-DDThh:mm:ss.sss+hhmm` is 28 characters; room for more digits of a fraction.
_LONGEST_TEMPORAL = 40
_ID = re.compile(r"[A-Za-z0-9]{15}|[A-Za-z0-9]{18}")
_ID_18 = re.compile(r"[A-Za-z0-9]{18}")
_COMPARABLE = (str, int, float, bool, date, type(None))


@dataclass(frozen=True)
class WhereCondition:
    """A parsed condition and the text it came from (errors point into the text)."""

    text: str
    condition: Condition

    @property
    def fields(self) -> tuple[str, ...]:
        """The field names the condition reads, as written, each once (any letter case)."""
        seen: dict[str, str] = {}
        for predicate in predicates(self.condition):
            seen.setdefault(predicate.field.name.casefold(), predicate.field.name)
        return tuple(seen.values())

    def holds(self, record: Mapping[str, Any]) -> bool:
        """Whether `record` meets the condition (a field it lacks is null).

        Raises SoqlError, and nothing else, when a value cannot be compared with the literal
        it meets (a number against a text literal, an address object against anything)."""
        return condition_holds(self.condition, self._typed(record), self.text)

    def _typed(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """`record` with text values read as the datetime or date their literal asks for."""
        temporal = {
            predicate.field.name.casefold()
            for predicate in predicates(self.condition)
            for literal in (
                predicate.values if isinstance(predicate, InList) else (predicate.value,)
            )
            if isinstance(literal.value, date)
        }
        short_ids = self._short_id_fields()
        # Only the fields the condition reads: another field's value (a Contact's compound
        # Name in a change event) cannot change the answer, so it cannot make it unknowable.
        read = {field.casefold() for field in self.fields}
        typed: dict[str, Any] = {}
        for name, value in record.items():
            if name.casefold() not in read:
                continue
            if isinstance(value, str) and name.casefold() in temporal:
                value = _temporal(value)
            elif isinstance(value, str) and name.casefold() in short_ids:
                value = value[:15] if _ID_18.fullmatch(value) else value
            if not isinstance(value, _COMPARABLE):
                detail = f"field '{name}' holds a {type(value).__name__}, which no literal matches"
                raise SoqlError("INVALID_FIELD", locate(self.text, 0, detail))
            typed[name] = value
        return typed

    def _short_id_fields(self) -> set[str]:
        """Fields compared with 15-character ids only. Salesforce matches such a literal
        against the 18-character id a record holds (the last 3 only encode the case of the
        first 15), so their values are compared by those 15 characters; a field also compared
        with 18-character ids keeps its whole value."""
        lengths: dict[str, set[int]] = {}
        for predicate in predicates(self.condition):
            if isinstance(predicate, Like):
                continue  # a pattern, not an id
            literals = predicate.values if isinstance(predicate, InList) else (predicate.value,)
            for literal in literals:
                if isinstance(literal.value, str) and _ID.fullmatch(literal.value):
                    lengths.setdefault(predicate.field.name.casefold(), set()).add(
                        len(literal.value)
                    )
        return {name for name, found in lengths.items() if found == {15}}


def parse_condition(text: str) -> WhereCondition:
    """`text` (what follows WHERE) parsed; raises SoqlError when the engine cannot evaluate
    it: outside the SOQL subset, or with anything after the condition."""
    try:
        return WhereCondition(text, parse_where(text))
    except RecursionError:
        # Parentheses nested past Python's stack; Salesforce caps a query's length instead.
        raise SoqlError("MALFORMED_QUERY", "the condition nests too deeply") from None


def _temporal(value: str) -> str | date | datetime:
    """A datetime or date written as Salesforce writes them, or `value` unchanged."""
    if len(value) > _LONGEST_TEMPORAL:
        return value  # no datetime is this long; and the offset search is not linear
    compact = _COMPACT_OFFSET.fullmatch(value)
    moment = parse_datetime(f"{compact[1]}:{compact[2]}" if compact else value)
    if moment is not None:
        try:
            moment.astimezone(UTC)
        except OverflowError:
            # At the calendar's edge (year 9999 at -14:00) the moment has no UTC form to
            # compare: left as text, it meets the literal as a wrong type (SoqlError).
            return value
        return moment
    day = parse_date(value)
    return value if day is None else day
