"""The emulator's SOQL engine: a tokenizer, parser and evaluator for the subset it serves.

`parse_query` turns text into a `Query` (or raises `SoqlError` with Salesforce's error code
and message); `run_query` runs it over an object's records.
"""

from sftriggerd.emulator.soql.errors import SoqlError
from sftriggerd.emulator.soql.evaluate import run_query, unknown_object_error
from sftriggerd.emulator.soql.nodes import (
    And,
    Comparison,
    Condition,
    FieldRef,
    InList,
    Like,
    Literal,
    Not,
    Or,
    OrderItem,
    Query,
)
from sftriggerd.emulator.soql.parser import parse_query

__all__ = [
    "And",
    "Comparison",
    "Condition",
    "FieldRef",
    "InList",
    "Like",
    "Literal",
    "Not",
    "Or",
    "OrderItem",
    "Query",
    "SoqlError",
    "parse_query",
    "run_query",
    "unknown_object_error",
]
