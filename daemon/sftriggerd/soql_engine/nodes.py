"""The parsed form of a query: frozen values the evaluator walks.

Every field reference keeps its offset in the query text, so a field the object lacks can be
reported with the row and column Salesforce would give.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal as TypingLiteral

from sftriggerd.soql_engine.literals import LikePattern

LiteralValue = str | int | float | bool | None | datetime | date
ComparisonOperator = TypingLiteral["=", "!=", "<", "<=", ">", ">="]


@dataclass(frozen=True)
class FieldRef:
    name: str  # as written in the query
    position: int


@dataclass(frozen=True)
class Literal:
    # str only for quoted literals: the evaluator relies on that to refuse quoted datetimes.
    value: LiteralValue
    position: int


@dataclass(frozen=True)
class Comparison:
    field: FieldRef
    operator: ComparisonOperator
    value: Literal


@dataclass(frozen=True)
class InList:
    field: FieldRef
    values: tuple[Literal, ...]
    negated: bool  # NOT IN


@dataclass(frozen=True)
class Like:
    field: FieldRef
    pattern: LikePattern
    value: Literal  # the pattern as a plain string, for type checks against the field


@dataclass(frozen=True)
class Not:
    operand: Condition


@dataclass(frozen=True)
class And:
    operands: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Condition, ...]


Predicate = Comparison | InList | Like
Condition = Predicate | Not | And | Or


@dataclass(frozen=True)
class OrderItem:
    field: str  # as written in the query
    descending: bool = False
    # Salesforce puts nulls first when ascending and last when descending unless told.
    nulls_last: bool = False
    position: int = dataclasses.field(default=0, compare=False)


@dataclass(frozen=True)
class Query:
    select: tuple[str, ...]  # field names as written; empty for SELECT COUNT()
    count_only: bool
    object_name: str
    where: Condition | None = None
    order_by: tuple[OrderItem, ...] = ()
    limit: int | None = None
    offset: int | None = None
    # Where the query came from, so errors found while running it can point into it.
    text: str = dataclasses.field(default="", compare=False, repr=False)
    select_positions: tuple[int, ...] = dataclasses.field(default=(), compare=False, repr=False)
    object_position: int = dataclasses.field(default=0, compare=False, repr=False)

    def field_refs(self) -> list[FieldRef]:
        """Every field the query names, in reading order."""
        positions = self.select_positions or (0,) * len(self.select)
        refs = [FieldRef(name, at) for name, at in zip(self.select, positions, strict=True)]
        if self.where is not None:
            refs.extend(predicate.field for predicate in predicates(self.where))
        refs.extend(FieldRef(item.field, item.position) for item in self.order_by)
        return refs


def predicates(condition: Condition) -> list[Predicate]:
    """The comparisons, IN lists and LIKEs inside `condition`, in reading order."""
    if isinstance(condition, Not):
        return predicates(condition.operand)
    if isinstance(condition, And | Or):
        return [found for operand in condition.operands for found in predicates(operand)]
    return [condition]
