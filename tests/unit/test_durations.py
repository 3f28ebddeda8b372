from datetime import timedelta

import pytest

from sftriggerd.config.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500ms", timedelta(milliseconds=500)),
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("3d", timedelta(days=3)),
        ("1h30m", timedelta(minutes=90)),
        ("1.5s", timedelta(milliseconds=1500)),
        (" 10s ", timedelta(seconds=10)),
    ],
)
def test_parses_operator_spellings(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "10", "10 s", "s", "5x", "-5s", "5sec", "1h 30m", "m5"])
def test_rejects_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["500ms", "30s", "5m", "2h", "3d", "1h30m", "1d2h3m4s5ms"])
def test_format_round_trips(text: str) -> None:
    assert format_duration(parse_duration(text)) == text
