"""The pure reading of Salesforce answers: examples, then properties over anything a peer
can send (any exception other than the documented ones fails)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftriggerd.errors import AuthenticationError, SalesforceError
from sftriggerd.salesforce.answers import (
    MAX_RETRY_AFTER_S,
    MalformedAnswerError,
    Ok,
    Refused,
    Relogin,
    RetryLater,
    SalesforceApiError,
    Token,
    classify,
    classify_token,
    connection_failed,
    expect_object,
    parse_retry_after,
    query_page,
)
from sftriggerd.salesforce.limits import parse_limit_info

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
DATA = "/services/data/v62.0/query/01gXX-2000"


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30", 30.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("²", None),  # isdigit() says yes, int() says no
        ("٣", None),  # an Arabic-Indic three: int() would take it, HTTP does not
        ("9" * 5000, MAX_RETRY_AFTER_S),
        ("0" * 5000 + "12", 12.0),
        ("-5", None),
        ("soon", None),
        ("", None),
        ("Sat, 28 Nov 2026 10:05:00 GMT", 300.0),
        ("Sat, 28 Nov 2026 10:05:00", 300.0),  # no zone: GMT
        ("Sat, 28 Nov 2026 09:00:00 GMT", 0.0),  # in the past: now
        ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_RETRY_AFTER_S),
        ("Mon, 99 Foo 2026", None),
        (None, None),
        (30, None),  # not a header value at all
    ],
)
def test_retry_after_values(value: object, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(), st.from_regex(r"[0-9]{1,6000}", fullmatch=True), st.none()))
def test_retry_after_never_raises_and_is_bounded(value: str | None) -> None:
    seconds = parse_retry_after(value, NOW)
    assert seconds is None or 0.0 <= seconds <= MAX_RETRY_AFTER_S


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9999, 12, 30)))
def test_an_http_date_is_read_as_seconds_from_now(when: datetime) -> None:
    text = when.replace(microsecond=0).strftime("%a, %d %b %Y %H:%M:%S GMT")
    expected = (when.replace(microsecond=0, tzinfo=UTC) - NOW).total_seconds()
    assert parse_retry_after(text, NOW) == min(max(expected, 0.0), MAX_RETRY_AFTER_S)


def test_classification_examples() -> None:
    ok = classify(200, {}, body({"totalSize": 0, "done": True, "records": []}), NOW)
    assert isinstance(ok, Ok) and ok.body["done"] is True
    assert classify(204, {}, b"", NOW) == Ok(None)
    assert classify(200, {}, b"", NOW) == Ok(None)
    with pytest.raises(MalformedAnswerError):
        query_page(None)
    unavailable = body([{"errorCode": "SERVER_UNAVAILABLE", "message": "down"}])
    assert classify(503, {"retry-after": "12"}, unavailable, NOW) == RetryLater(
        "Salesforce answered HTTP 503 SERVER_UNAVAILABLE: down", 12.0
    )
    assert classify(429, {"Retry-After": "²"}, b"", NOW) == RetryLater(
        "Salesforce answered HTTP 429 HTTP_429: ", None
    )
    limit = body([{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests"}])
    assert isinstance(classify(403, {}, limit, NOW), RetryLater)
    expired = body([{"errorCode": "INVALID_SESSION_ID", "message": "Session expired"}])
    relogin = classify(401, {}, expired, NOW)
    assert isinstance(relogin, Relogin) and relogin.error.error_code == "INVALID_SESSION_ID"
    malformed = body([{"errorCode": "MALFORMED_QUERY", "message": "unexpected token"}])
    refused = classify(400, {}, malformed, NOW)
    assert isinstance(refused, Refused) and isinstance(refused.error, SalesforceApiError)
    assert refused.error.error_code == "MALFORMED_QUERY"
    assert isinstance(classify(502, {}, b"<html>Bad gateway</html>", NOW), RetryLater)
    not_json = classify(200, {}, b"<html>maintenance</html>", NOW)
    assert isinstance(not_json, Refused) and isinstance(not_json.error, MalformedAnswerError)
    assert isinstance(classify(200, {}, b"\xff\xfe{", NOW), Refused)
    assert isinstance(classify(200, {}, b"[" * 100_000, NOW), Refused)  # deeper than recursion


def test_error_text_loses_urls_user_info_and_is_bounded() -> None:
    leaky = body([{"errorCode": "X", "message": "via http://bob:Pw-Zq9@proxy:3128 " + "y" * 9000}])
    verdict = classify(400, {}, leaky, NOW)
    assert isinstance(verdict, Refused)
    assert "Pw-Zq9" not in str(verdict.error) and len(str(verdict.error)) < 700
    failure = connection_failed(OSError("Cannot connect via http://bob:Pw-Zq9@proxy:3128"))
    assert "Pw-Zq9" not in failure.reason and "http://proxy:3128" in failure.reason


HEADER_NAMES = st.sampled_from(["Retry-After", "retry-after", "RETRY-AFTER", "Content-Type"])
HEADER_VALUES = st.one_of(
    st.text(), st.sampled_from(["²", "9" * 5000, "-1", "Sat, 28 Nov 2026 10:05:00 GMT"])
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
SALESFORCE_SHAPES = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries(
        {},
        optional={
            "errorCode": JSON_VALUES
            | st.sampled_from(["INVALID_SESSION_ID", "SERVER_UNAVAILABLE"]),
            "message": JSON_VALUES,
            "error": JSON_VALUES | st.just("unknown_error"),
            "error_description": JSON_VALUES,
            "records": st.lists(JSON_VALUES, max_size=3),
            "done": JSON_VALUES,
            "totalSize": JSON_VALUES,
            "nextRecordsUrl": JSON_VALUES | st.just(DATA),
            "access_token": JSON_VALUES | st.just("00D!token"),
            "instance_url": JSON_VALUES | st.just("https://acme.my.salesforce.com"),
            "issued_at": JSON_VALUES | st.just("1" * 5000),
        },
    ),
)
BODIES = st.one_of(
    st.binary(max_size=200),
    SALESFORCE_SHAPES.map(lambda value: json.dumps(value).encode()),
    st.builds(lambda v: json.dumps([v]).encode(), SALESFORCE_SHAPES),
)
STATUSES = st.one_of(
    st.sampled_from([200, 204, 400, 401, 403, 404, 407, 429, 500, 503]), st.integers(100, 999)
)


@settings(max_examples=300, deadline=None)
@given(STATUSES, st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=3), BODIES)
def test_every_answer_has_a_verdict(status: int, headers: dict[str, str], raw: bytes) -> None:
    verdict = classify(status, headers, raw, NOW)
    if isinstance(verdict, RetryLater):
        assert verdict.after_s is None or 0.0 <= verdict.after_s <= MAX_RETRY_AFTER_S
        assert status >= 500 or status in (408, 429) or b"_" in raw
    elif isinstance(verdict, Ok):
        assert 200 <= status < 300
    elif isinstance(verdict, Relogin):
        assert status == 401 or b"INVALID_SESSION_ID" in raw
    else:
        assert isinstance(verdict, Refused) and isinstance(verdict.error, SalesforceError)
    if status == 401:
        assert isinstance(verdict, Relogin)
    if status in (429, 503):
        assert isinstance(verdict, RetryLater)


@settings(max_examples=200, deadline=None)
@given(SALESFORCE_SHAPES)
def test_a_query_page_is_read_or_refused_as_malformed(value: Any) -> None:
    try:
        page, next_url = query_page(value)
    except MalformedAnswerError:
        return
    assert all(isinstance(record, dict) for record in page.records)
    assert isinstance(page.total_size, int) and page.total_size >= 0
    assert next_url is None or next_url.startswith("/services/data/")
    assert (next_url is None) == page.done


@pytest.mark.parametrize(
    "value",
    [
        [],
        {"done": True},
        {"records": {"a": 1}},
        {"records": [1, {"Id": "x"}]},
        {"records": [], "done": "false"},
        {"records": [], "totalSize": "abc"},
        {"records": [], "totalSize": 1e400},
        {"records": [], "done": False},
        {"records": [], "done": False, "nextRecordsUrl": 5},
        {"records": [], "done": False, "nextRecordsUrl": "https://evil.example/x"},
        {"records": [], "done": False, "nextRecordsUrl": "/services/data/v1/query/a b"},
    ],
)
def test_malformed_query_pages(value: Any) -> None:
    with pytest.raises(MalformedAnswerError):
        query_page(value)


def test_a_query_page_and_its_next_path() -> None:
    page, next_url = query_page(
        {"totalSize": 3, "done": False, "records": [{}], "nextRecordsUrl": DATA}
    )
    assert (page.total_size, page.done, next_url) == (3, False, DATA)
    assert query_page({"records": [{}, {}]})[0].total_size == 2


@settings(max_examples=100, deadline=None)
@given(JSON_VALUES)
def test_expect_object(value: Any) -> None:
    try:
        assert expect_object(value, "limits") is value
    except MalformedAnswerError:
        assert not isinstance(value, dict)


def test_token_answers() -> None:
    granted = {"access_token": "00D!t", "instance_url": "https://acme.my.salesforce.com/"}
    token = classify_token(
        200, {}, body({**granted, "issued_at": "1700000000000"}), "password", NOW
    )
    assert token == Token("00D!t", "https://acme.my.salesforce.com", 1700000000000)
    assert isinstance(classify_token(503, {}, b"", "password", NOW), RetryLater)
    assert classify_token(429, {"Retry-After": "3"}, b"", "jwt", NOW) == RetryLater(
        "token endpoint answered HTTP 429", 3.0
    )
    retry = body({"error": "unknown_error", "error_description": "retry your request"})
    assert isinstance(classify_token(400, {}, retry, "password", NOW), RetryLater)
    refusal = body({"error": "invalid_grant", "error_description": "authentication failure"})
    refused = classify_token(400, {}, refusal, "password", NOW)
    assert isinstance(refused, Refused) and isinstance(refused.error, AuthenticationError)
    assert "wrong username, password or security token" in str(refused.error)
    for broken in ({"access_token": "t"}, {**granted, "instance_url": 7}, [granted]):
        verdict = classify_token(200, {}, body(broken), "password", NOW)
        assert isinstance(verdict, Refused) and isinstance(verdict.error, MalformedAnswerError)
    huge = classify_token(200, {}, body({**granted, "issued_at": "1" * 5000}), "password", NOW)
    assert isinstance(huge, Token) and huge.issued_at_ms == int(NOW.timestamp() * 1000)


@settings(max_examples=300, deadline=None)
@given(STATUSES, st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=3), BODIES)
def test_every_token_answer_has_a_verdict(status: int, headers: dict[str, str], raw: bytes) -> None:
    verdict = classify_token(status, headers, raw, "password", NOW)
    if isinstance(verdict, Token):
        assert 200 <= status < 300 and verdict.access_token
        assert verdict.instance_url.startswith(("http://", "https://"))
    elif isinstance(verdict, RetryLater):
        assert verdict.after_s is None or 0.0 <= verdict.after_s <= MAX_RETRY_AFTER_S
    else:
        assert isinstance(verdict.error, AuthenticationError | MalformedAnswerError)
    if status >= 500 or status == 429:
        assert isinstance(verdict, RetryLater)


@pytest.mark.parametrize(
    ("header", "used", "limit"),
    [
        ("api-usage=10018/100000", 10018, 100000),
        ("api-usage=1/750; per-app-api-usage=1/5(appName=x)", 1, 750),
        ("api-usage=" + "9" * 5000 + "/100", None, None),
        ("api-usage=²/100", None, None),
        (None, None, None),
    ],
)
def test_limit_info(header: str | None, used: int | None, limit: int | None) -> None:
    usage = parse_limit_info(header)
    assert (usage.used, usage.limit) == (used, limit) if usage else used is None


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.from_regex(r"api-usage=[0-9]{0,6000}/[0-9]{0,30}")))
def test_limit_info_never_raises(header: str) -> None:
    usage = parse_limit_info(header)
    assert usage is None or (usage.used >= 0 and usage.limit >= 0)


def test_retry_after_reads_time_zones() -> None:
    plus_one = "Sat, 28 Nov 2026 11:00:30 +0100"
    assert parse_retry_after(plus_one, NOW) == 30.0
    assert parse_retry_after(plus_one, NOW + timedelta(hours=2)) == 0.0
