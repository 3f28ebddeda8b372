"""Review of issue 14's streamed `where`: a text value of a field compared with a datetime
literal was read as a datetime by a regular expression with two `.*`, quadratic in the
value's length: a 16,000-character text cost over a second of stalled event loop (a long
text area, 131,072 characters, well over a minute)."""

from __future__ import annotations

import time

import pytest

from sftriggerd.soql_engine import SoqlError, parse_condition


@pytest.mark.parametrize("value", ["T" * 16_000, "T1+12" * 3_200])
def test_a_long_text_against_a_datetime_literal_is_refused_quickly(value: str) -> None:
    where = parse_condition("Due__c > 2026-01-01T00:00:00Z")
    started = time.perf_counter()
    with pytest.raises(SoqlError):
        where.holds({"Due__c": value})
    assert time.perf_counter() - started < 0.2


def test_datetimes_still_read() -> None:
    where = parse_condition("Due__c > 2026-01-01T00:00:00Z")
    assert where.holds({"Due__c": "2026-01-01T02:00:00.000+0100"}) is True
    assert where.holds({"Due__c": "2026-01-01T00:30:00.000+0100"}) is False
