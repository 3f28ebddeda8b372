from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sftriggerd.delivery.backoff import (
    honour_retry_after,
    jittered,
    next_attempt_at,
    schedule_step,
)

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
S = timedelta(seconds=1)
SCHEDULE = (5 * S, 30 * S, 300 * S)
DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("attempts", "step"), [(0, 5 * S), (1, 30 * S), (2, 300 * S), (3, 300 * S), (99, 300 * S)]
)
def test_the_step_follows_the_schedule_and_the_last_repeats(attempts: int, step: timedelta) -> None:
    assert schedule_step(SCHEDULE, attempts) == step


def test_an_empty_schedule_is_refused() -> None:
    with pytest.raises(ValueError):
        schedule_step((), 0)


@pytest.mark.parametrize(
    ("jitter", "seconds"), [(0.0, 8.0), (0.25, 9.0), (0.5, 10.0), (0.75, 11.0), (0.9999, 12.0)]
)
def test_jitter_spreads_a_step_by_twenty_percent(jitter: float, seconds: float) -> None:
    assert jittered(10 * S, jitter).total_seconds() == pytest.approx(seconds, abs=0.01)


@pytest.mark.parametrize("jitter", [-0.1, 1.0, 2.0])
def test_jitter_outside_zero_to_one_is_refused(jitter: float) -> None:
    with pytest.raises(ValueError):
        jittered(S, jitter)


def test_next_attempt_uses_the_step_for_the_attempts_made_so_far() -> None:
    now = T0 + timedelta(minutes=10)
    assert next_attempt_at(SCHEDULE, DAY, 0, T0, now, 0.5) == now + 5 * S
    assert next_attempt_at(SCHEDULE, DAY, 1, T0, now, 0.0) == now + 24 * S
    assert next_attempt_at(SCHEDULE, DAY, 7, T0, now, 0.5) == now + 300 * S


def test_the_last_attempt_is_moved_onto_the_max_age_deadline() -> None:
    deadline = T0 + DAY
    now = deadline - 10 * S
    assert next_attempt_at(SCHEDULE, DAY, 5, T0, now, 0.5) == deadline


@pytest.mark.parametrize("after", [timedelta(0), S, DAY])
def test_at_or_past_the_deadline_the_delivery_is_dead(after: timedelta) -> None:
    assert next_attempt_at(SCHEDULE, DAY, 3, T0, T0 + DAY + after, 0.5) is None


def test_max_age_runs_from_retry_since_not_creation() -> None:
    redriven = T0 + 5 * DAY  # a redrive restarts the clock
    now = redriven + timedelta(hours=1)
    assert next_attempt_at(SCHEDULE, DAY, 9, redriven, now, 0.5) == now + 300 * S


def test_retry_after_is_never_before_now_and_bounded_by_the_deadline() -> None:
    now = T0 + timedelta(hours=1)
    assert honour_retry_after(now + 7 * S, DAY, T0, now) == now + 7 * S
    assert honour_retry_after(now - 7 * S, DAY, T0, now) == now
    assert honour_retry_after(now + 2 * DAY, DAY, T0, now) == T0 + DAY
    assert honour_retry_after(now, DAY, T0, T0 + DAY) is None
