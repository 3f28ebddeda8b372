"""The outbox gauges' refresh spacing: a slow count (a large backlog) is read less often, so
it never takes more than a small share of the store's time from the drain."""

from __future__ import annotations

from sftriggerd.delivery.dispatcher import counts_spacing_s


def test_a_quick_count_refreshes_twice_a_second() -> None:
    assert counts_spacing_s(0.0, 5.0) == counts_spacing_s(0.002, 5.0) == 0.5


def test_a_slow_count_waits_twenty_times_as_long_as_it_took() -> None:
    assert counts_spacing_s(0.07, 5.0) == 0.07 * 20


def test_never_longer_than_the_refresh_interval() -> None:
    # A count that waited behind a stalled store is not a slow count: at most the interval.
    assert counts_spacing_s(1.0, 5.0) == 5.0
    assert counts_spacing_s(30.0, 5.0) == 5.0
