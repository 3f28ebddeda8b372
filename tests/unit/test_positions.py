"""Stored positions: one encode/decode for every format stored so far, and the hand-over rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftriggerd.errors import SftriggerdError
from sftriggerd.sources.position import (
    EPOCH,
    RESUME_OVERLAP,
    PositionError,
    ReplayPosition,
    StreamResume,
    WatermarkPosition,
    decode,
    encode,
    expired_fill_from,
    poll_resume,
    stream_resume,
)

CHANNEL = "/data/AccountChangeEvent"
T = datetime(2026, 11, 28, 10, 15, 2, 123000, tzinfo=UTC)
LOOKBACK = timedelta(minutes=5)


def test_position_error_names_the_trigger_and_is_ours() -> None:
    with pytest.raises(PositionError, match="'accounts'") as raised:
        decode("accounts", {"replay_id": "twelve"})
    assert isinstance(raised.value, SftriggerdError)


@pytest.mark.parametrize(
    ("stored", "event_time", "expected"),
    [
        ({"replay_id": 12, "channel": CHANNEL}, None, ReplayPosition(CHANNEL, 12)),
        ({"replay_id": 12, "channel": CHANNEL}, T, ReplayPosition(CHANNEL, 12, T)),
        ({"replay_id": None, "channel": CHANNEL}, None, ReplayPosition(CHANNEL, None)),
        ({"replay_id": None}, T, ReplayPosition(CHANNEL, None, T)),
        (
            {"watermark": "2026-11-28T10:15:02.123Z", "id": "001A"},
            None,
            WatermarkPosition(T, "001A"),
        ),
        (
            {"watermark": "2026-11-28T10:15:02.123Z", "id": "", "floor": "1970-01-01T00:00:00Z"},
            T,
            WatermarkPosition(T, "", EPOCH),
        ),
    ],
)
def test_every_stored_format_decodes(
    stored: dict[str, Any], event_time: datetime | None, expected: object
) -> None:
    assert decode("accounts", stored, event_time, CHANNEL) == expected


@pytest.mark.parametrize(
    "position",
    [
        ReplayPosition(CHANNEL, 8451, T),
        ReplayPosition(CHANNEL, b"\x00\x01opaque", T),
        ReplayPosition(CHANNEL, None, T),
        ReplayPosition(CHANNEL, None, None),
        WatermarkPosition(T, "001A", T - LOOKBACK),
    ],
)
def test_encode_then_decode_is_the_same_position(position: ReplayPosition) -> None:
    assert decode("accounts", encode(position)) == position


def test_the_stream_resumes_from_a_replay_id_or_else_from_the_time_reached() -> None:
    assert stream_resume(None, LOOKBACK) is None
    assert stream_resume(ReplayPosition(CHANNEL, 5, T), LOOKBACK) == StreamResume(5, None)
    assert stream_resume(ReplayPosition(CHANNEL, None, T), LOOKBACK) == StreamResume(
        None, T - RESUME_OVERLAP
    )
    # An old `{"replay_id": null}` without any time: the trigger's start_from decides.
    assert stream_resume(ReplayPosition(CHANNEL, None, None), LOOKBACK) is None
    # Polling ran last: fill from its watermark, less the look-back.
    handed = stream_resume(WatermarkPosition(T, "001A"), LOOKBACK)
    assert handed == StreamResume(None, T - LOOKBACK)


def test_an_expired_replay_id_is_filled_from_the_time_reached_not_from_now() -> None:
    now = T + timedelta(hours=3)
    assert expired_fill_from(ReplayPosition(CHANNEL, 5, T), now) == T - RESUME_OVERLAP
    assert expired_fill_from(ReplayPosition(CHANNEL, 5, None), now) == now - RESUME_OVERLAP


def test_polling_takes_over_from_the_time_the_stream_reached() -> None:
    taken = poll_resume(ReplayPosition(CHANNEL, 5, T), LOOKBACK)
    second = T.replace(microsecond=0)
    assert taken == WatermarkPosition(second, "", second - LOOKBACK)
    own = WatermarkPosition(T, "001A", EPOCH)
    assert poll_resume(own, LOOKBACK) is own
    assert poll_resume(ReplayPosition(CHANNEL, 5, None), LOOKBACK) is None
    assert poll_resume(None, LOOKBACK) is None


def test_a_resume_time_near_the_start_of_time_does_not_overflow() -> None:
    early = datetime(1, 1, 1, tzinfo=UTC)
    assert stream_resume(ReplayPosition(CHANNEL, None, early), LOOKBACK) == StreamResume(
        None, EPOCH
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
position_keys = st.sampled_from(["replay_id", "channel", "reached", "watermark", "id", "floor"])
times = st.datetimes(timezones=st.just(UTC)).map(lambda t: t.isoformat())
values = (
    json_values
    | times
    | st.dictionaries(st.just("base64"), st.text(max_size=12) | json_values, max_size=1)
)


@settings(max_examples=200, deadline=None)
@given(
    stored=json_values | st.dictionaries(position_keys, values, max_size=6),
    event_time=st.none() | st.datetimes(timezones=st.just(UTC)),
)
def test_decode_of_any_stored_json_gives_a_position_or_a_position_error(
    stored: Any, event_time: datetime | None
) -> None:
    try:
        position = decode("accounts", stored, event_time, CHANNEL)
    except PositionError:
        return
    assert isinstance(position, ReplayPosition | WatermarkPosition)
    assert decode("accounts", encode(position)) == position
    stream_resume(position, LOOKBACK)
    poll_resume(position, LOOKBACK)


@pytest.mark.parametrize(
    ("stored", "problem"),
    [
        ("x", "(expected an object, got str)"),
        ({}, "(neither a replay id nor a watermark)"),
        ({"watermark": 5}, "(watermark is not a time)"),
        ({"watermark": "soon"}, "(watermark 'soon' is not a time)"),
        ({"watermark": "2026-11-28T10:15:02Z", "id": 5}, "(id is not text)"),
        ({"watermark": "2026-11-28T10:15:02Z", "floor": "x"}, "(floor 'x' is not a time)"),
        ({"replay_id": 5, "reached": "x"}, "(reached 'x' is not a time)"),
        ({"replay_id": 5, "channel": 5}, "(channel is not text)"),
        ({"replay_id": {"base64": "!!!"}}, "(replay id is not base64: "),
        ({"replay_id": 1.5}, "(replay id 1.5 is neither a number nor bytes)"),
        ({"watermark": "0001-01-01T00:00:00+01:00"}, "is out of range)"),
    ],
)
def test_every_unreadable_position_names_the_trigger_and_the_problem(
    stored: Any, problem: str
) -> None:
    with pytest.raises(PositionError) as raised:
        decode("accounts", stored)
    assert raised.value.trigger == "accounts"
    text = str(raised.value)
    assert text.startswith("trigger 'accounts': stored position is not readable (")
    assert problem in text and text.endswith("; reset its checkpoint to resume")


def test_an_event_time_out_of_range_is_a_position_error_of_the_trigger() -> None:
    zoned = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))  # before year 1 in UTC
    with pytest.raises(PositionError) as raised:
        decode("accounts", {"replay_id": 5}, zoned)
    assert raised.value.trigger == "accounts"


def test_defaults_of_a_stored_position() -> None:
    assert decode("accounts", {"replay_id": 5}) == ReplayPosition("", 5)
    assert decode("accounts", {"watermark": "2026-11-28T10:15:02Z"}) == WatermarkPosition(
        T.replace(microsecond=0), ""
    )


def test_without_a_stream_position_an_expired_fill_starts_from_now() -> None:
    now = T + timedelta(hours=3)
    assert expired_fill_from(None, now) == now - RESUME_OVERLAP
    assert expired_fill_from(WatermarkPosition(T, "001A"), now) == now - RESUME_OVERLAP


def test_stored_times_are_utc_with_a_z() -> None:
    stored = encode(ReplayPosition(CHANNEL, 5, T))
    assert stored["reached"] == "2026-11-28T10:15:02.123000Z"
