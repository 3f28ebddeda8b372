"""A SOQL engine: a tokenizer, parser and evaluator for the subset the emulator serves.

`parse_query` turns text into a `Query` (or raises `SoqlError` with Salesforce's error code
and message); `run_query` runs it over an object's records. The daemon uses the same engine
for a trigger's `where` on streamed events (`parse_condition`), so one
condition means the same on both transports. It imports nothing else of the package.
"""

from sftriggerd.soql_engine.condition import WhereCondition, parse_condition
from sftriggerd.soql_engine.errors import SoqlError
from sftriggerd.soql_engine.evaluate import run_query, unknown_object_error
from sftriggerd.soql_engine.nodes import (
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
from sftriggerd.soql_engine.parser import parse_query

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
    "WhereCondition",
    "parse_condition",
    "parse_query",
    "run_query",
    "unknown_object_error",
]
