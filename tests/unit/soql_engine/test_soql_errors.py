"""Queries the SOQL engine refuses, with Salesforce's error codes, messages and positions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sftriggerd.soql_engine import SoqlError, parse_query, run_query, unknown_object_error

FIELDS = ("Id", "Name", "Employees", "SystemModstamp", "IsActive")
RECORDS = [
    {
        "Id": "a1",
        "Name": "Acme",
        "Employees": 10,
        "SystemModstamp": datetime(2024, 1, 1, tzinfo=UTC),
        "IsActive": True,
    }
]


def _refusal(soql: str, fields: tuple[str, ...] = FIELDS) -> SoqlError:
    with pytest.raises(SoqlError) as caught:
        run_query(parse_query(soql), RECORDS, fields)
    return caught.value


@pytest.mark.parametrize(
    ("soql", "token"),
    [
        ("", "<EOF>"),
        ("DELETE FROM Account", "'DELETE'"),
        ("SELECT Id FRM Account", "'FRM'"),
        ("SELECT Id", "<EOF>"),
        ("SELECT Id Name FROM Account", "'Name'"),
        ("SELECT Id FROM", "<EOF>"),
        ("SELECT FROM Account", "'FROM'"),
        ("SELECT Id, FROM Account", "'FROM'"),
        ("SELECT Id FROM Account, Contact", "','"),
        ("SELECT Id, Owner.Name FROM Account", "'.'"),
        ("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "'('"),
        ("SELECT MAX(Employees) FROM Account", "'('"),
        ("SELECT COUNT(Id) FROM Account", "'Id'"),
        ("SELECT Id, COUNT() FROM Account", "'('"),
        ("SELECT COUNT(), Id FROM Account", "','"),
        ("SELECT Name FROM Account GROUP BY Name", "'GROUP'"),
        ("SELECT Id FROM Account WHERE SystemModstamp = TODAY", "'TODAY'"),
        ("SELECT Id FROM Account WHERE SystemModstamp > LAST_N_DAYS:3", "'LAST_N_DAYS'"),
        ("SELECT Id FROM Account WHERE Name = :name", "':'"),
        ("SELECT Id FROM Account WHERE Id IN (SELECT Id FROM Contact)", "'SELECT'"),
        ("SELECT Id FROM Account WHERE Name = 'a' AND Id = 'b' OR Id = 'c'", "'OR'"),
        ("SELECT Id FROM Account WHERE Name = 'a' OR Id = 'b' AND Id = 'c'", "'AND'"),
        ("SELECT Id FROM Account WHERE", "<EOF>"),
        ("SELECT Id FROM Account WHERE (Name = 'a'", "<EOF>"),
        ("SELECT Id FROM Account WHERE Name = 'a')", "')'"),
        ("SELECT Id FROM Account WHERE Name 'a'", "'a'"),
        ('SELECT Id FROM Account WHERE Name = "a"', "'\"'"),
        ("SELECT Id FROM Account WHERE Name = Id", "'Id'"),
        ("SELECT Id FROM Account WHERE Employees > null", "'null'"),
        ("SELECT Id FROM Account WHERE Name LIKE 5", "'5'"),
        ("SELECT Id FROM Account WHERE Name NOT LIKE 'a%'", "'LIKE'"),
        ("SELECT Id FROM Account WHERE Name IN ()", "')'"),
        ("SELECT Id FROM Account WHERE Name IN 'a'", "'a'"),
        ("SELECT Id FROM Account WHERE Name INCLUDES ('a')", "'INCLUDES'"),
        ("SELECT Id FROM Account ORDER Name", "'Name'"),
        ("SELECT Id FROM Account ORDER BY Name NULLS", "<EOF>"),
        ("SELECT Id FROM Account ORDER BY Name ASC DESC", "'DESC'"),
        ("SELECT Id FROM Account LIMIT", "<EOF>"),
        ("SELECT Id FROM Account LIMIT -1", "'-1'"),
        ("SELECT Id FROM Account LIMIT 1.5", "'1.5'"),
        ("SELECT Id FROM Account OFFSET 2 LIMIT 1", "'LIMIT'"),
        ("SELECT Id FROM Account LIMIT 5 garbage", "'garbage'"),
        ("SELECT Id FROM Account FOR UPDATE", "'FOR'"),
        ("SELECT Id FROM Account WITH SECURITY_ENFORCED", "'WITH'"),
        ("SELECT Id FROM Account WHERE SystemModstamp > 2024-01-01T00:00:00", None),
        # A `+` sent unencoded in a URL arrives as a space.
        ("SELECT Id FROM Account WHERE SystemModstamp > 2024-01-01T00:00:00 01:00", None),
        ("SELECT Id FROM Account WHERE SystemModstamp > 2024-01-01T25:00:00Z", None),
        ("SELECT Id FROM Account WHERE SystemModstamp > 2024-02-30", "'2024-02-30'"),
    ],
)
def test_malformed_queries(soql: str, token: str | None) -> None:
    with pytest.raises(SoqlError) as caught:
        parse_query(soql)
    assert caught.value.error_code == "MALFORMED_QUERY"
    if token is None:
        # A bad datetime literal is reported whole, up to the next space or bracket.
        token = "'" + soql.split("> ")[1].split(" ")[0] + "'"
    assert caught.value.message.endswith(f"\nunexpected token: {token}")


def test_malformed_message_points_at_the_token() -> None:
    with pytest.raises(SoqlError) as caught:
        parse_query("SELECT Id FRM Account")
    assert caught.value.message == (
        "\nSELECT Id FRM Account\n          ^\nERROR at Row:1:Column:11\nunexpected token: 'FRM'"
    )
    assert str(caught.value) == caught.value.message


def test_end_of_query_is_reported_after_the_last_character() -> None:
    with pytest.raises(SoqlError) as caught:
        parse_query("SELECT Id FROM")
    assert "ERROR at Row:1:Column:15\nunexpected token: <EOF>" in caught.value.message


def test_unterminated_string() -> None:
    with pytest.raises(SoqlError) as caught:
        parse_query("SELECT Id FROM Account WHERE Name = 'abc")
    assert caught.value.error_code == "MALFORMED_QUERY"
    assert "ERROR at Row:1:Column:37\n" in caught.value.message
    assert caught.value.message.endswith("mismatched character '<EOF>' expecting '''")


@pytest.mark.parametrize(
    ("literal", "detail"),
    [
        (
            "'a\\qb'",
            "Invalid string literal 'a\\q'. Illegal character sequence '\\q' in string literal.",
        ),
        ("'a\\u12zz'", "Illegal character sequence '\\u' in string literal."),
        # The backslash escapes the closing quote, so the string never ends.
        ("'a\\'", "mismatched character '<EOF>' expecting '''"),
    ],
)
def test_illegal_escape(literal: str, detail: str) -> None:
    with pytest.raises(SoqlError) as caught:
        parse_query(f"SELECT Id FROM Account WHERE Name = {literal}")
    assert caught.value.error_code == "MALFORMED_QUERY"
    assert caught.value.message.endswith(detail)


def test_duplicate_field() -> None:
    with pytest.raises(SoqlError) as caught:
        parse_query("SELECT Id, Name, ID FROM Account")
    assert caught.value.error_code == "MALFORMED_QUERY"
    assert caught.value.message.endswith("\nduplicate field selected: ID")


def test_invalid_field_message_matches_salesforce() -> None:
    error = _refusal("SELECT Id, Foo__c FROM Account")
    assert error.error_code == "INVALID_FIELD"
    assert error.message == (
        "\nSELECT Id, Foo__c FROM Account\n           ^\nERROR at Row:1:Column:12\n"
        "No such column 'Foo__c' on entity 'Account'. If you are attempting to use a custom"
        " field, be sure to append the '__c' after the custom field name. Please reference"
        " your WSDL or the describe call for the appropriate names."
    )


@pytest.mark.parametrize(
    ("soql", "field", "row", "column"),
    [
        ("SELECT Id FROM Account WHERE Bogus = 1", "Bogus", 1, 30),
        ("SELECT Id FROM Account WHERE NOT (Name = 'a' OR Bogus IN (1))", "Bogus", 1, 49),
        ("SELECT Id\nFROM Account\nORDER BY Id, Nope DESC", "Nope", 3, 14),
        # The first unknown field in reading order is the one reported.
        ("SELECT Zip FROM Account WHERE Bogus = 1", "Zip", 1, 8),
    ],
)
def test_invalid_field_position(soql: str, field: str, row: int, column: int) -> None:
    error = _refusal(soql)
    assert error.error_code == "INVALID_FIELD"
    assert f"\nERROR at Row:{row}:Column:{column}\nNo such column '{field}' " in error.message
    line = soql.split("\n")[row - 1]
    assert f"\n{line}\n{' ' * (column - 1)}^\n" in error.message


def test_invalid_field_found_without_records() -> None:
    with pytest.raises(SoqlError) as caught:
        run_query(parse_query("SELECT Id FROM Account ORDER BY Nope"), [], FIELDS)
    assert caught.value.error_code == "INVALID_FIELD"


def test_field_names_are_case_insensitive() -> None:
    rows = run_query(
        parse_query("SELECT ID, name FROM Account WHERE EMPLOYEES = 10"), RECORDS, FIELDS
    )
    assert rows == [{"Id": "a1", "Name": "Acme"}]


@pytest.mark.parametrize(
    ("condition", "code", "detail"),
    [
        (
            "SystemModstamp > '2024-01-01T00:00:00Z'",
            "MALFORMED_QUERY",
            "value of filter criterion for field 'SystemModstamp' must be of type dateTime"
            " and should not be enclosed in quotes",
        ),
        (
            # Refused although no record gets past the first condition to compare against it.
            "Name = 'nobody' AND SystemModstamp < '2024-01-01'",
            "MALFORMED_QUERY",
            "value of filter criterion for field 'SystemModstamp' must be of type dateTime"
            " and should not be enclosed in quotes",
        ),
        (
            "SystemModstamp LIKE '2024%'",
            "MALFORMED_QUERY",
            "value of filter criterion for field 'SystemModstamp' must be of type dateTime"
            " and should not be enclosed in quotes",
        ),
        (
            "Name = 5",
            "INVALID_FIELD",
            "value of filter criterion for field 'Name' must be of type string"
            " and should be enclosed in quotes",
        ),
        (
            "Employees IN (1, '10')",
            "INVALID_FIELD",
            "value of filter criterion for field 'Employees' must be of type double"
            " and should not be enclosed in quotes",
        ),
        (
            "IsActive = 'true'",
            "INVALID_FIELD",
            "value of filter criterion for field 'IsActive' must be of type boolean"
            " and should not be enclosed in quotes",
        ),
    ],
)
def test_literal_of_the_wrong_type(condition: str, code: str, detail: str) -> None:
    error = _refusal(f"SELECT Id FROM Account WHERE {condition}")
    assert error.error_code == code
    assert error.message.endswith(f"\n{detail}")


def test_unknown_object_error() -> None:
    error = unknown_object_error(parse_query("SELECT Id FROM Foo"))
    assert error.error_code == "INVALID_TYPE"
    assert error.message.startswith(
        "\nSELECT Id FROM Foo\n               ^\nERROR at Row:1:Column:16\n"
    )
    assert "sObject type 'Foo' is not supported." in error.message


def test_literal_type_is_unchecked_when_every_value_is_null() -> None:
    records = [{"Id": "a1", "SystemModstamp": None}]
    query = parse_query("SELECT Id FROM Account WHERE SystemModstamp = '2024'")
    assert run_query(query, records, FIELDS) == []
