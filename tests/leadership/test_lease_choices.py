"""The round's judgements over any sequence of what the store answers: a lease under this
replica's name is a twin's only once seen renewed, a leftover only once seen unchanged long
enough; shedding keeps the share and the pinned orphans, and gives up the last by name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from sftriggerd.lease_choices import OwnLease, OwnNameLeases, PinnedOrphans, to_shed
from sftriggerd.store.leadership import TriggerLease

SETTLE_S = 60.0
START = datetime(2026, 1, 1, tzinfo=UTC)

# Each observation: (epoch, expires_at offset in seconds, monotonic seconds since the last).
observations = st.lists(
    st.tuples(st.integers(1, 3), st.integers(0, 3), st.floats(0.0, 100.0)), min_size=1
)


def lease(epoch: int, expires_s: int) -> TriggerLease:
    expires_at = START + timedelta(seconds=expires_s)
    return TriggerLease("t", "a", epoch, START, expires_at, live=True)


@given(seen=observations)
def test_an_own_lease_is_judged_by_whether_it_moves(seen: list[tuple[int, int, float]]) -> None:
    own = OwnNameLeases(SETTLE_S)
    now_s = 0.0
    previous: tuple[int, int] | None = None
    unchanged_since = 0.0
    for epoch, expires_s, elapsed_s in seen:
        now_s += elapsed_s
        verdict = own.judge(lease(epoch, expires_s), first_round=False, now_s=now_s)
        state = (epoch, expires_s)
        if previous is None:
            assert verdict is OwnLease.UNSURE  # seen once: nothing to tell yet
            unchanged_since = now_s
        elif state != previous:
            assert verdict is OwnLease.TWIN  # someone renewed it
            unchanged_since = now_s
        elif now_s - unchanged_since >= SETTLE_S:
            assert verdict is OwnLease.LEFTOVER
        else:
            assert verdict is OwnLease.UNSURE
        previous = state


@given(seen=observations)
def test_the_first_round_and_an_unanswered_acquisition_make_a_leftover(
    seen: list[tuple[int, int, float]],
) -> None:
    own = OwnNameLeases(SETTLE_S)
    own.asking("t")
    for epoch, expires_s, elapsed_s in seen:
        assert own.judge(lease(epoch, expires_s), False, elapsed_s) is OwnLease.LEFTOVER
        assert own.judge(lease(epoch, expires_s), True, elapsed_s) is OwnLease.LEFTOVER
    own.answered("t")
    assert not own.unanswered("t")


names = st.sets(st.sampled_from([f"t{n}" for n in range(8)]))


@given(counted=names, pinned=names, share=st.integers(0, 8))
def test_shedding_keeps_the_share_and_the_pinned_and_gives_up_the_last(
    counted: set[str], pinned: set[str], share: int
) -> None:
    shed = to_shed(counted, share, pinned)
    kept = counted - set(shed)
    assert set(shed) <= counted - pinned
    assert counted & pinned <= kept
    assert len(kept - pinned) == min(share, len(counted - pinned))
    assert all(s > k for s in shed for k in kept - pinned)


def test_a_pin_holds_while_the_live_replicas_stay_the_same() -> None:
    pins = PinnedOrphans()
    pins.pin("t3", frozenset({"a", "b"}))
    assert pins.pinned(frozenset({"a", "b"})) == {"t3"}
    assert pins.pinned(frozenset({"a", "b", "c"})) == set()
    assert pins.pinned(frozenset({"a", "b"})) == set()  # forgotten once the set changed
