"""Review of issue 14's streamed `where`: LIKE was a regular expression with `.*` for every
`%`, so `Description LIKE '%urgent%customer%x'` against a long text a record holds (a long
text area takes 131,072 characters) backtracked in cubic time: seconds to hours of a stalled
event loop for one streamed change, during which nothing else in the daemon moves."""

from __future__ import annotations

import time

import pytest

from sftriggerd.soql_engine import parse_condition


def test_like_with_many_wildcards_is_fast_on_a_long_value() -> None:
    where = parse_condition("Description LIKE '%urgent%customer%x'")
    value = "urgent customer " * 1000  # 16,000 characters, no match
    started = time.perf_counter()
    assert where.holds({"Description": value}) is False
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("%urgent%customer%x", "an URGENT call, customer x", True),
        ("%urgent%customer%x", "customer urgent x", False),
        ("a_c", "abc", True),
        ("a_c", "abbc", False),
        ("a%", "a", True),
        ("%a", "ba", True),
        ("%a", "ab", False),
        ("%%", "", True),
        ("a%b%c", "abc", True),
        ("a%b%c", "ac", False),
        ("a%bc%bc", "abcbc", True),
        ("ab%ab", "ab", False),
        ("_%_", "x", False),
        ("50\\%", "50%", True),
        ("50\\%", "500", False),
        ("x\\_y", "x_y", True),
        ("x\\_y", "xzy", False),
        ("line%end", "line\nend", True),
    ],
)
def test_like_answers_as_before(pattern: str, value: str, expected: bool) -> None:
    assert parse_condition(f"Name LIKE '{pattern}'").holds({"Name": value}) is expected
