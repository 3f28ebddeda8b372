"""The in-memory lag history behind the status page's lag charts: one value per minute (the
highest), at most an hour of them, gaps kept as gaps, a forgotten trigger gone."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sftriggerd.lag_history import LagHistory, minute_of


class Clock:
    """Seconds since the epoch, moved by the test."""

    def __init__(self, at_s: float) -> None:
        self.at_s = at_s

    def __call__(self) -> float:
        return self.at_s


# 18:02:00 UTC on some day: a whole minute.
START_S = 1_796_000_520.0


def test_samples_in_one_minute_keep_the_highest() -> None:
    clock = Clock(START_S)
    history = LagHistory(clock)
    for offset_s, lag in ((0.0, 2.0), (20.0, 9.5), (59.9, 3.0)):
        clock.at_s = START_S + offset_s
        history.record("accounts", lag)
    assert history.kept("accounts") == {minute_of(START_S): 9.5}
    shown = history.last_hour("accounts")
    assert len(shown.values) == 60
    assert shown.values[-1] == 9.5 and shown.values[:-1] == [None] * 59
    assert shown.highest == 9.5 and shown.latest == 9.5 and shown.since_s == START_S


def test_a_minute_boundary_starts_a_new_bucket() -> None:
    clock = Clock(START_S + 59.999)
    history = LagHistory(clock)
    history.record("accounts", 7.0)
    clock.at_s = START_S + 60.0  # the next minute's first instant
    history.record("accounts", 1.0)
    first = minute_of(START_S)
    assert history.kept("accounts") == {first: 7.0, first + 1: 1.0}
    shown = history.last_hour("accounts")
    assert shown.values[-2:] == [7.0, 1.0] and shown.latest == 1.0 and shown.highest == 7.0


def test_at_most_sixty_minutes_are_kept() -> None:
    clock = Clock(START_S)
    history = LagHistory(clock)
    for minute in range(90):
        clock.at_s = START_S + 60 * minute
        history.record("accounts", float(minute))
    kept = history.kept("accounts")
    assert len(kept) == 60
    assert min(kept) == minute_of(START_S) + 30 and kept[max(kept)] == 89.0
    assert history.last_hour("accounts").values == [float(m) for m in range(30, 90)]


def test_minutes_without_samples_are_gaps_and_old_ones_age_out_on_reading() -> None:
    clock = Clock(START_S)
    history = LagHistory(clock)
    history.record("accounts", 4.0)
    clock.at_s = START_S + 10 * 60
    history.record("accounts", 6.0)
    shown = history.last_hour("accounts")
    assert shown.values[-11:] == [4.0, *[None] * 9, 6.0]
    # An hour of silence (a stalled reporter): nothing sampled is shown as nothing.
    clock.at_s = START_S + 10 * 60 + 3600
    quiet = history.last_hour("accounts")
    assert quiet.values == [None] * 60 and quiet.highest is None and quiet.latest is None
    assert history.kept("accounts") == {}


def test_a_forgotten_trigger_has_no_history_and_others_keep_theirs() -> None:
    clock = Clock(START_S)
    history = LagHistory(clock)
    history.record("accounts", 4.0)
    history.record("orders", 8.0)
    history.forget("accounts")
    history.forget("never-seen")  # nothing to forget: no error
    assert history.kept("accounts") == {}
    gone = history.last_hour("accounts")
    assert gone.values == [None] * 60 and gone.since_s is None
    assert history.last_hour("orders").highest == 8.0
    clock.at_s = START_S + 120
    history.record("accounts", 1.0)  # led here again: a new history from now
    assert history.last_hour("accounts").since_s == START_S + 120


def test_a_clock_stepping_back_drops_the_minutes_it_stamped_ahead() -> None:
    clock = Clock(START_S + 300)
    history = LagHistory(clock)
    history.record("accounts", 5.0)
    clock.at_s = START_S
    history.record("accounts", 50.0)
    assert history.kept("accounts") == {minute_of(START_S): 50.0}


samples = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=6 * 3600, allow_nan=False),
        st.floats(min_value=0, max_value=10**6, allow_nan=False),
    ),
    max_size=300,
)


@given(samples)
def test_fuzzed_samples_never_exceed_an_hour_and_each_minute_is_its_highest(
    drawn: list[tuple[float, float]],
) -> None:
    clock = Clock(START_S)
    history = LagHistory(clock)
    recorded: list[tuple[float, float]] = []
    for offset_s, lag in sorted(drawn, key=lambda sample: sample[0]):
        clock.at_s = START_S + offset_s
        history.record("t", lag)
        recorded.append((clock.at_s, lag))
        kept = history.kept("t")
        assert len(kept) <= 60
        newest = minute_of(clock.at_s)
        assert all(newest - 60 < minute <= newest for minute in kept)
    kept = history.kept("t")
    for minute, value in kept.items():
        in_minute = [lag for at_s, lag in recorded if minute_of(at_s) == minute]
        assert value == max(in_minute)
    if recorded:
        # Every minute of the last hour that had a sample is kept.
        newest = minute_of(recorded[-1][0])
        expected = {minute_of(at_s) for at_s, _ in recorded if minute_of(at_s) > newest - 60}
        assert set(kept) == expected
        shown = history.last_hour("t").values
        assert len(shown) == 60
        assert [value for value in shown if value is not None] == [
            kept[minute] for minute in sorted(kept)
        ]
