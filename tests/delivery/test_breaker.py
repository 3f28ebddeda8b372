from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sftriggerd.delivery.breaker import Admission, Breaker, BreakerPolicy

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
S = timedelta(seconds=1)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breaker(clock: Clock) -> Breaker:
    return Breaker(BreakerPolicy(failure_threshold=3, cooldown=30 * S, max_cooldown=100 * S), clock)


def open_it(breaker: Breaker) -> None:
    for _ in range(breaker.policy.failure_threshold):
        breaker.record_failure()


def test_closed_admits_everything_asked(breaker: Breaker) -> None:
    assert breaker.state == "closed"
    assert breaker.admit(8) == Admission(count=8)
    assert breaker.admit(0) == Admission(count=0)


def test_opens_after_n_consecutive_failures(breaker: Breaker, clock: Clock) -> None:
    assert breaker.record_failure() is None
    assert breaker.record_failure() is None
    assert breaker.record_failure() == "opened"
    snapshot = breaker.snapshot()
    assert (snapshot.state, snapshot.consecutive_failures, snapshot.opened_at) == ("open", 3, T0)
    assert snapshot.half_open_at == T0 + 30 * S
    assert breaker.admit(8) == Admission(count=0)


def test_a_success_resets_the_count(breaker: Breaker) -> None:
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.record_success() is None
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == "closed"


def test_after_the_cooldown_exactly_one_probe(breaker: Breaker, clock: Clock) -> None:
    open_it(breaker)
    clock.advance(29 * S)
    assert breaker.admit(8).count == 0
    clock.advance(S)
    assert breaker.state == "half_open" and breaker.half_open_at() is None
    assert breaker.admit(8) == Admission(count=1, probe=True)
    assert breaker.probing
    assert breaker.admit(8) == Admission(count=0)  # the probe is out


def test_a_probe_that_succeeds_closes(breaker: Breaker, clock: Clock) -> None:
    open_it(breaker)
    clock.advance(30 * S)
    breaker.admit(1)
    assert breaker.record_success() == "closed"
    snapshot = breaker.snapshot()
    assert (snapshot.state, snapshot.consecutive_failures, snapshot.opened_at) == (
        "closed",
        0,
        None,
    )
    assert snapshot.cooldown == 30 * S
    assert breaker.admit(4).count == 4


def test_a_probe_that_fails_reopens_with_a_doubled_cooldown_up_to_the_cap(
    breaker: Breaker, clock: Clock
) -> None:
    open_it(breaker)
    cooldowns = []
    for _ in range(4):
        clock.advance(breaker.snapshot().cooldown)
        assert breaker.admit(1).probe
        assert breaker.record_failure(probe=True) == "reopened"
        assert breaker.state == "open" and breaker.snapshot().opened_at == clock.now
        cooldowns.append(breaker.snapshot().cooldown)
    assert cooldowns == [60 * S, 100 * S, 100 * S, 100 * S]
    # Closing resets the cooldown to the policy's.
    clock.advance(100 * S)
    breaker.admit(1)
    breaker.record_success()
    open_it(breaker)
    assert breaker.snapshot().cooldown == 30 * S


def test_a_probe_with_nothing_to_send_is_given_back(breaker: Breaker, clock: Clock) -> None:
    open_it(breaker)
    clock.advance(30 * S)
    assert breaker.admit(1).probe
    breaker.cancel_probe()
    assert breaker.state == "half_open" and not breaker.probing
    assert breaker.admit(1).probe


def test_failures_of_sends_started_before_opening_change_nothing(
    breaker: Breaker, clock: Clock
) -> None:
    open_it(breaker)
    clock.advance(10 * S)
    assert breaker.record_failure() is None
    assert breaker.snapshot().opened_at == T0  # the cooldown is not restarted
    clock.advance(20 * S)
    breaker.admit(1)
    assert breaker.record_failure(probe=False) is None  # not the probe
    assert breaker.probing


def test_any_success_closes_an_open_breaker(breaker: Breaker) -> None:
    open_it(breaker)
    assert breaker.record_success() == "closed"
    assert breaker.state == "closed"


def test_policy_is_validated() -> None:
    with pytest.raises(ValueError):
        BreakerPolicy(failure_threshold=0)
    with pytest.raises(ValueError):
        BreakerPolicy(cooldown=60 * S, max_cooldown=30 * S)


def test_a_late_failure_during_the_probe_is_not_taken_as_the_probes_answer(
    breaker: Breaker, clock: Clock
) -> None:
    open_it(breaker)
    clock.advance(30 * S)
    assert breaker.admit(5) == Admission(count=1, probe=True)
    assert breaker.record_failure() is None  # a send started before the breaker opened
    assert breaker.state == "half_open" and breaker.probing


def test_after_a_probe_closed_it_the_next_opening_waits_its_cooldown(
    breaker: Breaker, clock: Clock
) -> None:
    open_it(breaker)
    clock.advance(30 * S)
    breaker.admit(1)
    assert breaker.record_success() == "closed" and not breaker.probing
    open_it(breaker)
    assert breaker.state == "open" and breaker.admit(1) == Admission(count=0)


def test_a_new_breaker_shows_the_policy_cooldown(breaker: Breaker) -> None:
    snapshot = breaker.snapshot()
    assert snapshot.cooldown == 30 * S and snapshot.state == "closed"
    assert snapshot.half_open_at is None and snapshot.consecutive_failures == 0


def test_policy_limits_are_inclusive() -> None:
    assert BreakerPolicy(failure_threshold=1).failure_threshold == 1
    assert BreakerPolicy(cooldown=30 * S, max_cooldown=30 * S).cooldown == 30 * S
    with pytest.raises(ValueError):
        BreakerPolicy(cooldown=timedelta(0))
