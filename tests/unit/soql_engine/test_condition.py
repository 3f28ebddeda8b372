"""A bare WHERE condition against one record as Salesforce gives it (JSON values, datetimes
as text): the rules the daemon filters streamed changes by, and that nothing but SoqlError
escapes whatever the condition text or the record holds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftriggerd.soql_engine import SoqlError, parse_condition


@pytest.mark.parametrize(
    ("condition", "record", "expected"),
    [
        ("Industry = 'Energy'", {"Industry": "Energy"}, True),
        ("industry = 'ENERGY'", {"Industry": "energy"}, True),  # names and text: any case
        ("Industry = 'Energy'", {"Industry": None}, False),
        ("Industry = 'Energy'", {}, False),  # a field the record lacks is null
        ("Industry != 'Energy'", {}, True),
        ("Industry = null", {"Name": "x"}, True),
        ("AnnualRevenue >= 1000 AND IsActive__c = true", {"AnnualRevenue": 1000.0}, False),
        (
            "AnnualRevenue >= 1000 AND IsActive__c = true",
            {"AnnualRevenue": 1500, "IsActive__c": True},
            True,
        ),
        ("Name LIKE 'Ac%'", {"Name": "Acme"}, True),
        ("Industry IN ('Energy', 'Retail')", {"Industry": "Retail"}, True),
        ("Industry NOT IN ('Energy', 'Retail')", {"Industry": "Retail"}, False),
        ("NOT (Industry = 'Energy')", {"Industry": "Retail"}, True),
        # Salesforce writes datetimes with a compact offset; they compare as moments.
        (
            "LastModifiedDate > 2024-05-01T00:00:00Z",
            {"LastModifiedDate": "2024-05-01T02:00:00.000+0100"},
            True,
        ),
        ("CreatedDate = 2024-05-01", {"CreatedDate": "2024-05-01T23:59:59.000+0000"}, True),
        ("CloseDate < 2024-05-01", {"CloseDate": "2024-04-30"}, True),
    ],
)
def test_conditions_against_records(condition: str, record: dict[str, Any], expected: bool) -> None:
    assert parse_condition(condition).holds(record) is expected


def test_fields_are_named_once_as_written() -> None:
    where = parse_condition("Industry = 'a' OR (industry = 'b' AND Rating != null)")
    assert where.fields == ("Industry", "Rating")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Industry = 'x' LIMIT 5",
        "Industry = 'x' AND Rating = 'y' OR Name = 'z'",  # no precedence: Salesforce refuses
        "Industry INCLUDES ('x')",
        "Industry = 'x') OR (Id != null",  # an injection out of the parentheses
        "(" * 5000 + "Industry = 'x'" + ")" * 5000,
        "SELECT Id FROM Account",
    ],
)
def test_conditions_the_evaluator_cannot_read_are_refused(text: str) -> None:
    with pytest.raises(SoqlError):
        parse_condition(text)


@pytest.mark.parametrize(
    ("condition", "record"),
    [
        ("AnnualRevenue = 'big'", {"AnnualRevenue": 5}),  # a number against text
        ("Name = 5", {"Name": "Acme"}),
        ("BillingAddress = 'x'", {"BillingAddress": {"city": "Paris"}}),  # a compound field
        ("CreatedDate > 2024-01-01T00:00:00Z", {"CreatedDate": "yesterday"}),
    ],
)
def test_values_no_literal_matches_raise_soql_error(condition: str, record: dict[str, Any]) -> None:
    with pytest.raises(SoqlError):
        parse_condition(condition).holds(record)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)
_fragments = st.sampled_from(
    [
        "Industry", "Name", "CreatedDate", "=", "!=", "<", ">=", "<>", "AND", "OR", "NOT", "IN",
        "LIKE", "(", ")", ",", "'Energy'", "'%a_'", "5", "-1.5", "true", "null",
        "2024-05-01", "2024-05-01T00:00:00Z", "'\\", "\\'", "INCLUDES", "LIMIT",
    ]
)  # fmt: skip
_condition_text = st.one_of(st.text(max_size=60), st.lists(_fragments, max_size=12).map(" ".join))
_record = st.dictionaries(
    st.sampled_from(["Industry", "industry", "Name", "CreatedDate", "Other"]) | st.text(max_size=8),
    _json | st.sampled_from(["2024-05-01", "2024-05-01T00:00:00.000+0000", "2024-13-45"]),
    max_size=5,
)


@settings(max_examples=400, deadline=None)
@given(text=_condition_text, record=_record)
def test_nothing_but_soql_error_escapes(text: str, record: dict[str, Any]) -> None:
    try:
        where = parse_condition(text)
    except SoqlError:
        return
    try:
        assert isinstance(where.holds(record), bool)
    except SoqlError:
        pass


_predicate = st.builds(
    "{} {} {}".format,
    st.sampled_from(["Industry", "Name", "CreatedDate"]),
    st.sampled_from(["=", "!=", "<", ">="]),
    st.sampled_from(["'Energy'", "5", "-1.5", "true", "2024-05-01", "2024-05-01T00:00:00Z"]),
) | st.sampled_from(["Industry = null", "Name != null", "Name LIKE 'E%'", "Name IN ('a', 5)"])
_valid_condition = st.lists(_predicate, min_size=1, max_size=4).map(" AND ".join)


@settings(max_examples=300, deadline=None)
@given(text=_valid_condition, record=_record)
def test_conditions_of_the_subset_parse_and_answer_or_refuse_the_value(
    text: str, record: dict[str, Any]
) -> None:
    where = parse_condition(text)  # never refused: every condition here is in the subset
    try:
        assert isinstance(where.holds(record), bool)
    except SoqlError as exc:
        assert exc.error_code in ("INVALID_FIELD", "MALFORMED_QUERY")
