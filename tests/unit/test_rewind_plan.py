"""Where a rewind puts a trigger and when it is refused; how operators write a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sftriggerd.config.settings import TriggerSettings
from sftriggerd.moments import parse_moment
from sftriggerd.sources.position import (
    ReplayPosition,
    WatermarkPosition,
    decode,
    encode,
    stream_resume,
)
from sftriggerd.sources.rewind import RewindRefused, plan_rewind
from sftriggerd.store.replay import Selection

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
CDC = TriggerSettings(name="accounts", object="Account", mode="streaming")
AUTO = TriggerSettings(name="auto", object="Account")
TOPIC = TriggerSettings(name="topic", object="Account", channel="/topic/Accounts")
EVENTS = TriggerSettings(name="orders", channel="/event/Order__e")
POLLED = TriggerSettings(name="polled", object="Account", mode="polling")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01T10:00:00Z", datetime(2026, 12, 1, 10, tzinfo=UTC)),
        ("2026-12-01T12:00:00+02:00", datetime(2026, 12, 1, 10, tzinfo=UTC)),
        ("2026-12-01T12:00:00.000+0200", datetime(2026, 12, 1, 10, tzinfo=UTC)),
        (" 2h ", NOW - timedelta(hours=2)),
        ("1d12h", NOW - timedelta(days=1, hours=12)),
    ],
)
def test_times_as_operators_write_them(text: str, expected: datetime) -> None:
    assert parse_moment(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2026-12-01T10:00:00", "no time zone"),
        ("yesterday", "is not a time"),
        ("", "is not a time"),
        ("12", "is not a time"),
        ("9" * 80 + "d", "is not a time"),
        ("0001-01-01T00:00:00+01:00", "out of range"),
    ],
)
def test_what_is_not_a_time_says_why(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_moment(text, NOW)


@given(st.text(max_size=80))
def test_any_text_is_a_utc_time_or_a_value_error(text: str) -> None:
    try:
        parsed = parse_moment(text, NOW)
    except ValueError:
        return
    assert parsed.tzinfo is not None and parsed.utcoffset() == timedelta(0)


def test_a_streamed_trigger_rewinds_to_a_replay_id_with_the_retention_as_its_fallback() -> None:
    plan = plan_rewind(CDC, "1234", NOW)
    assert plan.position == ReplayPosition("/data/AccountChangeEvent", 1234, NOW - timedelta(3))
    assert plan.resend == Selection(trigger="accounts", after_replay_id=1234)
    # The stored form resumes the subscription from that replay id.
    stored = decode("accounts", encode(plan.position))
    resume = stream_resume(stored, timedelta(minutes=5))
    assert resume is not None and resume.replay_id == 1234


def test_a_streamed_trigger_rewinds_to_a_time_by_back_filling_from_it() -> None:
    when = NOW - timedelta(hours=71)
    plan = plan_rewind(AUTO, "71h", NOW)
    assert plan.position == ReplayPosition("/data/AccountChangeEvent", None, when)
    assert plan.resend == Selection(trigger="auto", occurred_since=when)
    resume = stream_resume(decode("auto", encode(plan.position)), timedelta(minutes=5))
    assert resume is not None and resume.replay_id is None and resume.fill_from is not None
    assert resume.fill_from <= when


@pytest.mark.parametrize(
    ("trigger", "kept"),
    [(CDC, "3 days"), (AUTO, "3 days"), (TOPIC, "72 hours"), (EVENTS, "72 hours")],
)
def test_a_time_past_the_streaming_retention_is_refused_with_the_reason(
    trigger: TriggerSettings, kept: str
) -> None:
    with pytest.raises(RewindRefused, match=f"outside Salesforce's retention.*kept {kept}"):
        plan_rewind(trigger, "72h1s", NOW)
    assert plan_rewind(trigger, "72h", NOW).event_time == NOW - timedelta(hours=72)


def test_a_polled_trigger_takes_any_past_time_and_no_replay_id() -> None:
    plan = plan_rewind(POLLED, "2020-01-01T00:00:00Z", NOW)
    when = datetime(2020, 1, 1, tzinfo=UTC)
    assert plan.position == WatermarkPosition(when, "", when)
    with pytest.raises(RewindRefused, match="polling has no replay ids"):
        plan_rewind(POLLED, "1234", NOW)


@pytest.mark.parametrize("to", ["1h", "2026-12-03T11:00:00Z", "5"])
def test_platform_events_rewind_too(to: str) -> None:
    assert plan_rewind(EVENTS, to, NOW).position.channel == "/event/Order__e"  # type: ignore[union-attr]


@pytest.mark.parametrize("to", ["2026-12-04T00:00:00Z", "-5", "1.5", "soon", "9" * 19])
def test_a_future_or_unreadable_point_is_refused(to: str) -> None:
    with pytest.raises(RewindRefused):
        plan_rewind(CDC, to, NOW)


@given(
    st.sampled_from([CDC, AUTO, TOPIC, EVENTS, POLLED]),
    st.one_of(st.text(max_size=40), st.integers(min_value=0).map(str)),
)
def test_any_point_is_planned_or_refused_and_nothing_else(
    trigger: TriggerSettings, to: str
) -> None:
    try:
        plan = plan_rewind(trigger, to, NOW)
    except RewindRefused:
        return
    decode(trigger.name, encode(plan.position))  # what is stored reads back
