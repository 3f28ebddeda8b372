"""The lag history keys its minutes by the wall clock and drops any sample older than the
newest minute it holds. One sample taken while the clock was wrong ahead (a VM resumed
before NTP stepped it back, a bad RTC at boot) leaves a minute in the future, and every
later sample is dropped until the real time passes it: the status page's lag chart says
"no lag sampled" for the whole time while the gauge it claims to mirror keeps moving."""

from __future__ import annotations

from sftriggerd.lag_history import LagHistory

DAY_S = 86_400.0


def test_one_sample_under_a_clock_wrong_ahead_does_not_stop_the_history() -> None:
    now_s = [1_800_000_000.0]
    history = LagHistory(clock=lambda: now_s[0])
    history.record("accounts", 1.0)
    now_s[0] += DAY_S  # the wall clock a day ahead for one report
    history.record("accounts", 2.0)
    now_s[0] -= DAY_S  # stepped back to the right time
    for minute in range(1, 11):
        now_s[0] += 60
        history.record("accounts", 30.0 + minute)
    shown = history.last_hour("accounts")
    assert shown.latest == 40.0, f"the chart's latest lag is {shown.latest}"
