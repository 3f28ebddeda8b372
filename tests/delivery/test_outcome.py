"""Classification tables: what each answer means for the delivery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from sftriggerd.config.settings import RetrySettings
from sftriggerd.delivery.answers import Answer, Failure
from sftriggerd.delivery.outcome import (
    SNIPPET_CHARS,
    answer_error,
    classify,
    parse_retry_after,
    snippet,
)
from sftriggerd.store.records import Claim, Dead, Delivered, Retry

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=1)
RETRY = RetrySettings(
    schedule=(timedelta(seconds=5), timedelta(seconds=30)), max_age=timedelta(hours=1)
)


def claim(attempts: int = 0, retry_since: datetime = T0) -> Claim:
    return Claim(
        delivery_id=1,
        endpoint="hook",
        trigger="t",
        event_id="evt_1",
        body=b"{}",
        attempts=attempts,
        retry_since=retry_since,
        occurred_at=T0,
        lease_token="x",
        lease_until=NOW + timedelta(seconds=30),
    )


def answer(status: int, body: bytes = b"", retry_after: str | None = None) -> Answer:
    return Answer(status=status, retry_after=retry_after, body=body, duration_s=0.01)


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_delivered(status: int) -> None:
    assert classify(answer(status, b"ok"), claim(), RETRY, NOW, 0.5) == Delivered(status)


@pytest.mark.parametrize(
    "status", [100, 301, 302, 304, 400, 401, 403, 404, 408, 409, 422, 500, 502, 504]
)
def test_other_statuses_retry_on_the_schedule(status: int) -> None:
    outcome = classify(answer(status), claim(attempts=1), RETRY, NOW, 0.5)
    assert outcome == Retry(timedelta(seconds=30), status, f"HTTP {status}")


def test_410_is_dead_at_once_even_on_the_first_attempt() -> None:
    outcome = classify(answer(410, b"endpoint removed"), claim(), RETRY, NOW, 0.5)
    assert outcome == Dead(status=410, error="HTTP 410: endpoint removed")


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (Failure("timeout", "timeout after 10s", 10.0), "timeout after 10s"),
        (Failure("connection", "connection refused", 0.0), "connection refused"),
        (Failure("disconnected", "server disconnected without answering", 0.1), None),
    ],
)
def test_no_answer_retries_on_the_schedule(failure: Failure, error: str | None) -> None:
    outcome = classify(failure, claim(), RETRY, NOW, 0.5)
    assert outcome == Retry(timedelta(seconds=5), None, error or failure.error)


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [
        ("120", timedelta(seconds=120)),
        ("0", timedelta(0)),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), timedelta(seconds=90)),
        (format_datetime(NOW - timedelta(hours=1), usegmt=True), timedelta(0)),  # never earlier
        ("99999999", timedelta(hours=1) - (NOW - T0)),  # bounded by max_age
    ],
)
def test_429_and_503_honour_retry_after(status: int, retry_after: str, wait: timedelta) -> None:
    outcome = classify(answer(status, retry_after=retry_after), claim(), RETRY, NOW, 0.5)
    assert outcome == Retry(wait, status, f"HTTP {status}")


@pytest.mark.parametrize("retry_after", [None, "", "soon", "-5", "1.5", "Mon, 99 Foo 2026"])
def test_without_a_usable_retry_after_429_uses_the_schedule(retry_after: str | None) -> None:
    outcome = classify(answer(429, retry_after=retry_after), claim(), RETRY, NOW, 0.5)
    assert outcome == Retry(timedelta(seconds=5), 429, "HTTP 429")


def test_retry_after_is_ignored_on_other_statuses() -> None:
    outcome = classify(answer(500, retry_after="600"), claim(), RETRY, NOW, 0.5)
    assert isinstance(outcome, Retry) and outcome.delay == timedelta(seconds=5)


@pytest.mark.parametrize(
    "result",
    [answer(500, b"boom"), answer(429, retry_after="60"), Failure("timeout", "timeout", 1.0)],
)
def test_past_max_age_a_failure_is_dead(result: Answer | Failure) -> None:
    late = T0 + timedelta(hours=1, seconds=1)
    outcome = classify(result, claim(attempts=40), RETRY, late, 0.5)
    assert isinstance(outcome, Dead)
    assert outcome.error.endswith("(max_age reached)")


def test_past_max_age_a_2xx_is_still_delivered() -> None:
    late = T0 + timedelta(days=9)
    assert isinstance(classify(answer(204), claim(), RETRY, late, 0.5), Delivered)


def test_the_error_carries_a_trimmed_one_line_snippet() -> None:
    body = b"<html>\n  <body>Internal   Server Error</body>\n</html>" + b"x" * 1000
    error = answer_error(answer(500, body))
    assert error.startswith("HTTP 500: <html> <body>Internal Server Error</body> </html>xxx")
    assert len(error) == len("HTTP 500: ") + SNIPPET_CHARS and error.endswith("…")
    assert answer_error(answer(502, b"  \n ")) == "HTTP 502"


def test_the_snippet_never_carries_a_secret() -> None:
    body = b'{"echo": "Bearer tok-123456", "secret": "whsec_QUJDREVGR0g=", "k": "QUJDREVGR0g="}'
    text = snippet(body, secrets=("tok-123456", "QUJDREVGR0g=", "ab"))
    assert "tok-123456" not in text and "QUJDREVGR0g" not in text
    assert text.count("[redacted]") == 3


def test_the_snippet_survives_bytes_that_are_not_utf8() -> None:
    assert snippet(b"bad \xff\xfe bytes") == "bad \ufffd\ufffd bytes"


def test_retry_after_parsing() -> None:
    assert parse_retry_after(" 30 ", NOW) == NOW + timedelta(seconds=30)
    assert parse_retry_after("Sat, 28 Nov 2026 10:05:00 GMT", NOW) == T0 + timedelta(minutes=5)
    assert parse_retry_after("Sat, 28 Nov 2026 10:05:00", NOW) == T0 + timedelta(minutes=5)
    assert parse_retry_after("tomorrow", NOW) is None
    assert parse_retry_after(None, NOW) is None


def test_url_user_info_never_reaches_last_error() -> None:
    """Issue 13, item 10: `last_error` is shown by the admin API and the status page."""
    failure = Failure("connection", "proxy http://sync:pr0xy@proxy:3128 refused", 0.1)
    retried = classify(failure, claim(), RETRY, NOW, 0.5)
    assert isinstance(retried, Retry) and retried.error == "proxy http://proxy:3128 refused"
    echoed = classify(
        answer(500, b"bad upstream https://u:pw@db.internal/x"), claim(), RETRY, NOW, 0.5
    )
    assert isinstance(echoed, Retry)
    assert echoed.error == "HTTP 500: bad upstream https://db.internal/x"


def test_classify_scrubs_the_secrets_it_is_given_from_the_error() -> None:
    """A receiver that echoes our signing secret back must not put it in `last_error`."""
    body = b"echo: tok-123456"
    outcome = classify(answer(500, body), claim(), RETRY, NOW, 0.5, secrets=("tok-123456",))
    assert isinstance(outcome, Retry) and outcome.error == "HTTP 500: echo: [redacted]"


@pytest.mark.parametrize("result", [answer(503, b"busy"), answer(503, b"busy", "60")])
def test_a_dead_delivery_past_max_age_keeps_its_status_and_error(result: Answer) -> None:
    late = T0 + timedelta(hours=1, seconds=1)
    outcome = classify(result, claim(attempts=40), RETRY, late, 0.5)
    assert outcome == Dead(status=503, error="HTTP 503: busy (max_age reached)")


def test_a_longer_secret_is_redacted_whole_before_a_shorter_one_inside_it() -> None:
    # Replacing the short one first would leave the rest of the long one readable.
    text = snippet(b"key=abcd-efgh-ijkl", secrets=("abcd", "abcd-efgh-ijkl"))
    assert text == "key=[redacted]"
    assert snippet(b"key=abcd", secrets=("abcd",)) == "key=[redacted]"


def test_a_snippet_of_exactly_the_limit_is_not_cut() -> None:
    body = b"y" * SNIPPET_CHARS
    assert snippet(body) == "y" * SNIPPET_CHARS


def test_secrets_are_redacted_longest_first_not_in_text_order() -> None:
    # "zzzz" sorts after "aaaa-zzzz" but lies inside it: the long one must go first.
    assert snippet(b"key=aaaa-zzzz", secrets=("zzzz", "aaaa-zzzz")) == "key=[redacted]"
