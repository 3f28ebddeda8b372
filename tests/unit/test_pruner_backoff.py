"""The pruner's wait after failed prunes: positive, doubling, never above the prune interval."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sftriggerd.pruner import retry_delay_s


@given(
    failures=st.integers(min_value=0, max_value=10**6),
    first_s=st.floats(min_value=0.001, max_value=3600),
    most_s=st.floats(min_value=0.001, max_value=86_400),
)
def test_the_wait_is_positive_bounded_and_grows(
    failures: int, first_s: float, most_s: float
) -> None:
    wait_s = retry_delay_s(failures, first_s, most_s)
    assert 0 < wait_s <= most_s
    assert retry_delay_s(failures + 1, first_s, most_s) >= wait_s


def test_the_wait_doubles_from_the_first_up_to_the_interval() -> None:
    assert [retry_delay_s(n, 10, 3600) for n in range(1, 11)] == [
        10,
        20,
        40,
        80,
        160,
        320,
        640,
        1280,
        2560,
        3600,
    ]
