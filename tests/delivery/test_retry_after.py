"""`Retry-After` from a receiver: any text is read without raising, and the limit it is held
to is counted from the delivery's `retry_since` (creation or last redrive)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sftriggerd.config.settings import RetrySettings
from sftriggerd.delivery.answers import Answer
from sftriggerd.delivery.outcome import classify
from sftriggerd.delivery.retry_after import MAX_RETRY_AFTER_S, parse_retry_after
from sftriggerd.store.records import Claim, Dead, Retry

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
RETRY = RetrySettings(schedule=(timedelta(seconds=5),), max_age=timedelta(hours=1))

# Moments from the calendar's first day to its last, in any zone or none.
moments = st.datetimes(timezones=st.just(UTC))
header_text = st.one_of(
    st.text(),
    st.text(alphabet="0123456789²³¹٣-+ .e", max_size=30),
    st.from_regex(r"[A-Za-z]{3}, [0-9]{1,3} [A-Za-z]{3} [0-9]{1,6} [0-9:]{1,9} ?[A-Z+0-9-]*"),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)


@given(header_text, moments)
def test_any_header_is_a_time_or_none(value: str, now: datetime) -> None:
    found = parse_retry_after(value, now)
    assert found is None or found.tzinfo is not None


@given(header_text, st.integers(min_value=0, max_value=1000))
def test_any_header_classifies_as_a_retry_or_dead(value: str, attempts: int) -> None:
    outcome = classify(answer(503, value), claim(attempts=attempts), RETRY, NOW, 0.5)
    assert isinstance(outcome, Retry | Dead)
    if isinstance(outcome, Retry):
        assert timedelta(0) <= outcome.delay <= RETRY.max_age


@pytest.mark.parametrize(
    "value",
    ["²", "¹²", "٣", "-5", "+5", "5.5", "1e3", "", " ", "soon", "Wed, 99 Foo 2026 99:99:99 GMT"],
)
def test_unusable_values_are_none(value: str) -> None:
    assert parse_retry_after(value, NOW) is None


def test_5000_digits_are_capped_not_raised() -> None:
    assert parse_retry_after("9" * 5000, NOW) == NOW + timedelta(seconds=MAX_RETRY_AFTER_S)
    assert parse_retry_after("0" * 4999 + "7", NOW) == NOW + timedelta(seconds=7)


def test_an_http_date_in_any_zone_is_read_in_utc() -> None:
    when = parse_retry_after("Sat, 28 Nov 2026 11:00:00 +0100", NOW)
    assert when == NOW


def test_a_date_at_the_calendars_edge_is_none_or_a_time() -> None:
    early = parse_retry_after("Mon, 01 Jan 0001 00:00:00 +0100", NOW)
    assert early is None or early.tzinfo is not None
    far = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", NOW)
    assert far is not None and far.year == 9999


def test_the_retry_after_limit_counts_from_retry_since_not_occurred_at() -> None:
    """A redriven delivery of an old change: its max_age clock restarted at the redrive,
    so the receiver's Retry-After is honoured, not taken as "aged out"."""
    redriven = claim(retry_since=NOW - timedelta(minutes=1), occurred_at=NOW - timedelta(days=9))
    outcome = classify(answer(503, "60"), redriven, RETRY, NOW, 0.5)
    assert outcome == Retry(delay=timedelta(seconds=60), status=503, error="HTTP 503")
    # And the limit itself is retry_since + max_age.
    capped = classify(answer(429, "86400"), redriven, RETRY, NOW, 0.5)
    assert isinstance(capped, Retry)
    assert NOW + capped.delay == redriven.retry_since + RETRY.max_age


def answer(status: int, retry_after: str | None) -> Answer:
    return Answer(status=status, retry_after=retry_after, body=b"", duration_s=0.01)


def claim(attempts: int = 0, retry_since: datetime = NOW, occurred_at: datetime = NOW) -> Claim:
    return Claim(
        delivery_id=1,
        endpoint="hook",
        trigger="t",
        event_id="evt_1",
        body=b"{}",
        attempts=attempts,
        retry_since=retry_since,
        occurred_at=occurred_at,
        lease_token="x",
        lease_until=NOW + timedelta(seconds=30),
    )


def test_a_delay_just_under_the_cap_is_kept_as_given() -> None:
    # As many digits as the cap, but smaller: not capped.
    assert parse_retry_after("100000000", NOW) == NOW + timedelta(seconds=100_000_000)


def test_a_delay_past_the_end_of_the_calendar_stays_an_aware_time() -> None:
    near_the_end = datetime.max.replace(tzinfo=UTC) - timedelta(seconds=1)
    later = parse_retry_after("60", near_the_end)
    assert later == datetime.max.replace(tzinfo=UTC) and later.tzinfo is UTC


def test_a_date_header_longer_than_64_characters_is_not_parsed() -> None:
    date = "Sat, 28 Nov 2026 10:05:00 GMT"
    at_limit = date + " " * 34 + "x"  # the date parser skips the trailing token
    assert len(at_limit) == 64
    assert parse_retry_after(at_limit, NOW) == datetime(2026, 11, 28, 10, 5, tzinfo=UTC)
    assert parse_retry_after(date + " " * 35 + "x", NOW) is None
