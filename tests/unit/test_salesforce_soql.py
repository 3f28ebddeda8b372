import unicodedata
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftriggerd.salesforce.soql import (
    SoqlValueError,
    format_datetime,
    identifier,
    literal,
    parse_datetime,
    record_id,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "null"),
        (True, "TRUE"),
        (False, "FALSE"),
        (42, "42"),
        (-1.5, "-1.5"),
        ("Acme", "'Acme'"),
        ("O'Brien", "'O\\'Brien'"),
        ("back\\slash", "'back\\\\slash'"),
        ("line\nbreak\ttab", "'line\\nbreak\\ttab'"),
        ("' OR Name != '", "'\\' OR Name != \\''"),
        (date(2026, 1, 2), "2026-01-02"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05Z"),
        (datetime(2026, 1, 2, 3, 4, 5, 250000, tzinfo=UTC), "2026-01-02T03:04:05.250Z"),
    ],
)
def test_literals(value: object, expected: str) -> None:
    assert literal(value) == expected  # type: ignore[arg-type]


def test_datetimes_are_converted_to_utc() -> None:
    paris = timezone(timedelta(hours=1))
    assert format_datetime(datetime(2026, 1, 2, 4, 0, tzinfo=paris)) == "2026-01-02T03:00:00Z"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        literal(datetime(2026, 1, 2))


@pytest.mark.parametrize("name", ["Account", "Invoice__c", "Owner.Name"])
def test_identifiers_pass(name: str) -> None:
    assert identifier(name) == name


@pytest.mark.parametrize("name", ["", "1Account", "Name; DROP", "Name--", "a b"])
def test_bad_identifiers_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        identifier(name)


@pytest.mark.parametrize(
    "text",
    ["2013-05-20T20:49:32.000+0000", "2013-05-20T20:49:32Z", "2013-05-20T22:49:32.000+02:00"],
)
def test_salesforce_datetimes_parse(text: str) -> None:
    assert parse_datetime(text) == datetime(2013, 5, 20, 20, 49, 32, tzinfo=UTC)


_UNESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}


def _unquote(quoted: str) -> str:
    """Reads a SOQL string literal back; fails on an unescaped quote inside it."""
    assert quoted[0] == quoted[-1] == "'" and len(quoted) >= 2
    out, chars = [], iter(quoted[1:-1])
    for char in chars:
        assert char != "'", f"unescaped quote in {quoted!r}"
        out.append(_UNESCAPES[next(chars)] if char == "\\" else char)
    return "".join(out)


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_text_is_quoted_exactly_or_refused(text: str) -> None:
    try:
        quoted = literal(text)
    except SoqlValueError:
        assert any(unicodedata.category(c) in ("Cc", "Cs") for c in text)
        return
    assert _unquote(quoted) == text


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (-float("inf"), "inf"),
        (2**63, "64 bits"),
        (-(2**70), "64 bits"),
        ("a\x00b", "U\\+0000"),
        ("bell\x07", "U\\+0007"),
        ("lone \ud800 surrogate", "surrogate"),
        (Decimal("1.5"), "Decimal"),
        (["a"], "list"),
        (b"bytes", "bytes"),
        (datetime(2026, 1, 2), "time zone"),
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))), "out of range"),
    ],
)
def test_values_that_cannot_be_quoted_are_refused_clearly(value: object, why: str) -> None:
    with pytest.raises(SoqlValueError, match=why):
        literal(value)  # type: ignore[arg-type]


def test_numbers_are_plain_decimals() -> None:
    assert literal(1e20) == "100000000000000000000"
    assert literal(1e-7) == "0.0000001"
    assert literal(2**63 - 1) == str(2**63 - 1)
    assert literal(datetime(999, 1, 2, tzinfo=UTC)) == "0999-01-02T00:00:00Z"


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.integers(), st.floats(), st.booleans(), st.none(), st.datetimes(timezones=st.timezones())
    )
)
def test_scalars_are_spelled_or_refused(value: object) -> None:
    try:
        spelled = literal(value)  # type: ignore[arg-type]
    except SoqlValueError:
        return
    assert spelled and " " not in spelled and "'" not in spelled


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.integers(), st.none()))
def test_names_ids_and_datetimes_are_checked_whatever_their_type(value: object) -> None:
    for check in (identifier, record_id, parse_datetime):
        try:
            result = check(value)
        except SoqlValueError as exc:
            assert isinstance(exc, ValueError) and len(str(exc)) < 200
            continue
        assert result is not None


def test_record_ids() -> None:
    assert record_id("001000000000001AAA") == "001000000000001AAA"
    for bad in ("001*", "001000000000001AA", "001000000000001'A", 1):
        with pytest.raises(SoqlValueError, match="record id"):
            record_id(bad)
