from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from sftriggerd.salesforce.soql import format_datetime, identifier, literal, parse_datetime


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
