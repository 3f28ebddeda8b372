"""Queries the emulator's SOQL engine answers, checked by the ids it returns and their order."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from sftriggerd.soql_engine import (
    And,
    Comparison,
    Not,
    OrderItem,
    parse_query,
    run_query,
)

FIELDS = (
    "Id",
    "Name",
    "Industry",
    "Employees",
    "Score__c",
    "IsActive",
    "SystemModstamp",
    "CloseDate",
    "Description",  # known to the object but stored on no record
)
_PLUS_TWO = timezone(timedelta(hours=2))


def _record(
    id_: str, name: str, industry: str | None, employees: int | None, *rest: Any
) -> dict[str, Any]:
    score, active, stamp, close_date = rest
    return {
        "Id": id_,
        "Name": name,
        "Industry": industry,
        "Employees": employees,
        "Score__c": score,
        "IsActive": active,
        "SystemModstamp": stamp,
        "CloseDate": close_date,
    }


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


RECORDS = [
    _record("a1", "Acme", "Tech", 100, 4.5, True, _utc(2024, 1, 1, 10), date(2024, 2, 1)),
    _record("a2", "acme labs", None, 50, -1.25, False, _utc(2024, 1, 1, 10), None),
    _record("a3", "Beta_Co", "Retail", None, 0, True, _utc(2024, 1, 2), date(2024, 1, 15)),
    # Stored with a +02:00 offset: 2023-12-31T23:59:59Z, a different day in UTC.
    _record(
        "a4",
        "O'Brien",
        "tech",
        250,
        3.0,
        False,
        datetime(2024, 1, 1, 1, 59, 59, tzinfo=_PLUS_TWO),
        date(2024, 2, 1),
    ),
    _record(
        "a5", "50% Off", "Retail", 10, None, True, _utc(2024, 1, 1, 12, 30), date(2023, 12, 31)
    ),
    _record("a6", "Back\\slash", None, 100, 2, None, _utc(2024, 1, 3, 5), None),
    _record("a7", "Tab\tName", "Energy", 75, 1, True, _utc(2024, 1, 1, 9), date(2024, 1, 1)),
]


def _ids(soql: str) -> list[str]:
    return [row["Id"] for row in run_query(parse_query(soql), RECORDS, FIELDS)]


def _where(condition: str) -> list[str]:
    return _ids(f"SELECT Id FROM Account WHERE {condition}")


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("Name = 'acme'", ["a1"]),
        ("Industry = 'TECH'", ["a1", "a4"]),
        ("Industry != 'Tech'", ["a2", "a3", "a5", "a6", "a7"]),
        ("Industry <> 'Tech'", ["a2", "a3", "a5", "a6", "a7"]),
        ("Industry = null", ["a2", "a6"]),
        ("Industry != NULL", ["a1", "a3", "a4", "a5", "a7"]),
        ("Employees > 75", ["a1", "a4", "a6"]),
        ("Employees >= 75", ["a1", "a4", "a6", "a7"]),
        ("Employees < 75", ["a2", "a5"]),
        ("Employees <= 50", ["a2", "a5"]),
        ("Score__c < 0", ["a2"]),
        ("Score__c > -1.5", ["a1", "a2", "a3", "a4", "a6", "a7"]),
        ("Score__c = 3", ["a4"]),
        ("Score__c = 4.50", ["a1"]),
        ("Name > 'b'", ["a3", "a4", "a6", "a7"]),
        ("IsActive = true", ["a1", "a3", "a5", "a7"]),
        ("IsActive = FALSE", ["a2", "a4"]),
        ("IsActive != True", ["a2", "a4", "a6"]),
    ],
)
def test_comparisons(condition: str, expected: list[str]) -> None:
    assert _where(condition) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("Industry IN ('retail', 'Energy')", ["a3", "a5", "a7"]),
        ("Industry NOT IN ('Retail', 'Tech')", ["a2", "a6", "a7"]),
        ("Employees IN (100, 10)", ["a1", "a5", "a6"]),
        ("Industry IN ('Energy', null)", ["a2", "a6", "a7"]),
        ("CloseDate IN (2024-02-01, 2023-12-31)", ["a1", "a4", "a5"]),
    ],
)
def test_in_lists(condition: str, expected: list[str]) -> None:
    assert _where(condition) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("Name LIKE 'acme%'", ["a1", "a2"]),
        ("Name LIKE '%E%'", ["a1", "a2", "a3", "a4", "a7"]),
        ("Name LIKE '_cme'", ["a1"]),
        ("Name LIKE 'ACME'", ["a1"]),
        ("Name LIKE 'Bet_\\_Co'", ["a3"]),
        ("Name LIKE 'Beta\\_%'", ["a3"]),
        ("Name LIKE '50\\% %'", ["a5"]),
        ("Name LIKE '%\\%%'", ["a5"]),
        ("Industry LIKE 'T%'", ["a1", "a4"]),
        ("NOT Industry LIKE 'T%'", ["a2", "a3", "a5", "a6", "a7"]),
    ],
)
def test_like(condition: str, expected: list[str]) -> None:
    assert _where(condition) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("Name = 'O\\'Brien'", ["a4"]),
        ("Name = 'Back\\\\slash'", ["a6"]),
        ("Name = 'Tab\\tName'", ["a7"]),
        ("Name = 'Tab\\u0009Name'", ["a7"]),
        ("Name = 'Tab\tName'", ["a7"]),
    ],
)
def test_string_escapes(condition: str, expected: list[str]) -> None:
    assert _where(condition) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("NOT Industry = 'Tech'", ["a2", "a3", "a5", "a6", "a7"]),
        ("Industry = 'Retail' AND Employees > 5", ["a5"]),
        ("Industry = 'Retail' OR Industry = 'Energy'", ["a3", "a5", "a7"]),
        # NOT binds tighter than AND: (NOT retail) AND active.
        ("NOT Industry = 'Retail' AND IsActive = true", ["a1", "a7"]),
        ("NOT (Industry = 'Retail' AND IsActive = true)", ["a1", "a2", "a4", "a6", "a7"]),
        (
            "(Industry = 'Retail' OR Industry = 'Tech') AND Employees >= 100",
            ["a1", "a4"],
        ),
        (
            "Industry = 'Retail' OR (Industry = 'Tech' AND Employees >= 100)",
            ["a1", "a3", "a4", "a5"],
        ),
        ("((Name = 'Acme'))", ["a1"]),
        ("Industry = 'Tech' AND Employees > 50 AND IsActive = false", ["a4"]),
        ("Name = 'x' OR Name = 'acme' OR Id = 'a7'", ["a1", "a7"]),
        ("NOT NOT Name = 'Acme'", ["a1"]),
    ],
)
def test_boolean_logic(condition: str, expected: list[str]) -> None:
    assert _where(condition) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("SystemModstamp > 2024-01-01T10:00:00Z", ["a3", "a5", "a6"]),
        ("SystemModstamp >= 2024-01-01T10:00:00.000Z", ["a1", "a2", "a3", "a5", "a6"]),
        # The same instant as 10:00Z, written with offsets.
        ("SystemModstamp = 2024-01-01T12:00:00+02:00", ["a1", "a2"]),
        ("SystemModstamp = 2024-01-01T05:30:00.000-04:30", ["a1", "a2"]),
        ("SystemModstamp = 2023-12-31T23:59:59Z", ["a4"]),
        # A date literal against a datetime field compares the UTC day.
        ("SystemModstamp < 2024-01-01", ["a4"]),
        ("SystemModstamp = 2024-01-01", ["a1", "a2", "a5", "a7"]),
        (
            "SystemModstamp >= 2024-01-01T00:00:00Z AND SystemModstamp < 2024-01-02T00:00:00Z",
            ["a1", "a2", "a5", "a7"],
        ),
        ("CloseDate > 2024-01-15", ["a1", "a4"]),
        ("CloseDate = 2024-01-15", ["a3"]),
        ("CloseDate = null", ["a2", "a6"]),
    ],
)
def test_dates_and_datetimes(condition: str, expected: list[str]) -> None:
    assert _where(condition) == expected


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        ("ORDER BY Employees", ["a3", "a5", "a2", "a7", "a1", "a6", "a4"]),
        ("ORDER BY Employees ASC", ["a3", "a5", "a2", "a7", "a1", "a6", "a4"]),
        ("ORDER BY Employees DESC", ["a4", "a1", "a6", "a7", "a2", "a5", "a3"]),
        ("ORDER BY Employees ASC NULLS LAST", ["a5", "a2", "a7", "a1", "a6", "a4", "a3"]),
        ("ORDER BY Employees DESC NULLS FIRST", ["a3", "a4", "a1", "a6", "a7", "a2", "a5"]),
        # Ties on the first key are ordered by the second.
        ("ORDER BY Employees DESC, Id DESC", ["a4", "a6", "a1", "a7", "a2", "a5", "a3"]),
        (
            "ORDER BY SystemModstamp DESC, Name DESC",
            ["a6", "a3", "a5", "a2", "a1", "a7", "a4"],
        ),
        ("ORDER BY SystemModstamp, Name", ["a4", "a7", "a1", "a2", "a5", "a3", "a6"]),
        ("ORDER BY Name", ["a5", "a1", "a2", "a6", "a3", "a4", "a7"]),
        ("ORDER BY IsActive, Id", ["a6", "a2", "a4", "a1", "a3", "a5", "a7"]),
        (
            "ORDER BY CloseDate DESC NULLS LAST, Id",
            ["a1", "a4", "a3", "a7", "a5", "a2", "a6"],
        ),
        ("ORDER BY Id LIMIT 2", ["a1", "a2"]),
        ("ORDER BY Id LIMIT 2 OFFSET 3", ["a4", "a5"]),
        ("ORDER BY Id OFFSET 5", ["a6", "a7"]),
        ("ORDER BY Id DESC LIMIT 0", []),
        ("ORDER BY Id LIMIT 10 OFFSET 10", []),
        ("LIMIT 3", ["a1", "a2", "a3"]),
    ],
)
def test_order_and_page(tail: str, expected: list[str]) -> None:
    assert _ids(f"SELECT Id FROM Account {tail}") == expected


def test_watermark_query_pages_past_ties() -> None:
    soql = (
        "SELECT Id, SystemModstamp FROM Account"
        " WHERE SystemModstamp >= 2024-01-01T10:00:00Z"
        " AND (SystemModstamp > 2024-01-01T10:00:00Z OR Id > 'a1')"
        " ORDER BY SystemModstamp, Id LIMIT 3"
    )
    assert _ids(soql) == ["a2", "a5", "a3"]


@pytest.mark.parametrize(
    ("soql", "expected"),
    [
        ("select id from account where name like 'ACME%' order by id desc limit 1", ["a2"]),
        (
            "SeLeCt Id FrOm Account WhErE IsActive = TRUE AnD Industry In ('retail') ORDER by Id",
            ["a3", "a5"],
        ),
        ("SELECT Id\nFROM Account\n\tWHERE Employees > 75\nORDER BY Id DESC", ["a6", "a4", "a1"]),
        ("SELECT Id FROM Account WHERE Description = null AND Id IN ('a2','a3')", ["a2", "a3"]),
    ],
)
def test_keywords_whitespace_and_case(soql: str, expected: list[str]) -> None:
    assert _ids(soql) == expected


def test_projection_uses_the_records_spelling_in_select_order() -> None:
    rows = run_query(
        parse_query("select NAME, id, description FROM account WHERE id = 'a1'"), RECORDS, FIELDS
    )
    assert rows == [{"Name": "Acme", "Id": "a1", "Description": None}]
    assert list(rows[0]) == ["Name", "Id", "Description"]


def test_projection_does_not_share_the_record() -> None:
    rows = run_query(parse_query("SELECT Id FROM Account WHERE Id = 'a1'"), RECORDS, FIELDS)
    rows[0]["Id"] = "changed"
    assert RECORDS[0]["Id"] == "a1"


def test_count_returns_matching_records_whole() -> None:
    query = parse_query("SELECT COUNT() FROM Account WHERE IsActive = true")
    assert query.count_only
    assert query.select == ()
    rows = run_query(query, RECORDS, FIELDS)
    assert [row["Id"] for row in rows] == ["a1", "a3", "a5", "a7"]
    assert rows[0]["Industry"] == "Tech"


def test_count_with_limit() -> None:
    rows = run_query(parse_query("SELECT count() FROM Account LIMIT 2"), RECORDS, FIELDS)
    assert len(rows) == 2


def test_object_named_like_a_keyword() -> None:
    query = parse_query("SELECT Id FROM Order ORDER BY Id DESC")
    assert query.object_name == "Order"
    assert [row["Id"] for row in run_query(query, RECORDS[:2], FIELDS)] == ["a2", "a1"]


def test_parse_keeps_the_clauses() -> None:
    query = parse_query(
        "SELECT Id, Name FROM Account ORDER BY Name DESC, Id NULLS LAST, Score__c LIMIT 5 OFFSET 2"
    )
    assert query.select == ("Id", "Name")
    assert not query.count_only
    assert query.object_name == "Account"
    assert query.where is None
    assert query.order_by == (
        OrderItem("Name", descending=True, nulls_last=True),
        OrderItem("Id", descending=False, nulls_last=True),
        OrderItem("Score__c", descending=False, nulls_last=False),
    )
    assert (query.limit, query.offset) == (5, 2)


def test_not_binds_tighter_than_and() -> None:
    where = parse_query("SELECT Id FROM A WHERE NOT X = 1 AND Y <> 2").where
    assert isinstance(where, And)
    first, second = where.operands
    assert isinstance(first, Not)
    assert isinstance(second, Comparison)
    assert second.operator == "!="


def test_records_with_other_key_case_are_matched_and_keep_their_spelling() -> None:
    records = [{"ID": "x1", "name": "Zed"}, {"ID": "x2", "name": "Abe"}]
    rows = run_query(
        parse_query("SELECT Id, Name FROM Contact WHERE Name != null ORDER BY Name"),
        records,
        ["Id", "Name"],
    )
    assert rows == [{"ID": "x2", "name": "Abe"}, {"ID": "x1", "name": "Zed"}]


def test_quote_newline_and_like_escapes_outside_like() -> None:
    records = [
        {"Id": "n1", "Name": 'say "hi"\nbye'},
        {"Id": "n2", "Name": "100\\%"},
        {"Id": "n3", "Name": "100%"},
    ]
    query = parse_query(
        "SELECT Id FROM Lead WHERE Name = 'say \\\"hi\\\"\\nbye' OR Name = '100\\%'"
    )
    # Outside LIKE, \% stays two characters, so only the record holding a backslash matches.
    assert [row["Id"] for row in run_query(query, records, ["Id", "Name"])] == ["n1", "n2"]
