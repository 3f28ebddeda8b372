"""The `ha` section and `store.pool_size`: their defaults, and which values an operator's file
may hold, each refusal reported at the key's own path and line."""

from __future__ import annotations

import os
import re
import socket
from datetime import timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sftriggerd.config import parse_settings
from sftriggerd.config.durations import format_duration
from sftriggerd.errors import ConfigError
from sftriggerd.held_leases import Timing

HEAD = """salesforce:
  auth: {client_id: cid, client_secret: cs, username: u, password: p}
"""
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]*")
# What the settings strip from a value: Unicode White_Space. Python's str.strip also strips the
# four information separators U+001C..U+001F, which the settings keep (and then refuse).
WHITE_SPACE = "".join(
    char for char in map(chr, range(0x3001)) if char.isspace() and char not in "\x1c\x1d\x1e\x1f"
)
# Milliseconds: what a duration in the file resolves to.
MILLIS = st.integers(min_value=1, max_value=3 * 3_600_000)


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, "c.yaml", {})
    return caught.value.problems


def with_ha(body: str) -> str:
    return HEAD + "ha:\n" + "".join(f"  {line}\n" for line in body.splitlines())


def test_defaults_renew_three_times_per_takeover_and_wake_by_notify() -> None:
    ha = parse_settings(HEAD, environ={}).ha
    assert ha.takeover == timedelta(seconds=15)
    assert ha.renew_every is None
    assert ha.resolved_renew_every == timedelta(seconds=5)
    assert ha.wake_ups == "notify"
    assert ha.replica_name is None
    assert ha.resolved_replica_name == f"{socket.gethostname()}-{os.getpid()}"


def test_the_renewal_default_follows_a_configured_takeover() -> None:
    ha = parse_settings(with_ha("takeover: 1m"), environ={}).ha
    assert ha.resolved_renew_every == timedelta(seconds=20)


def test_configured_values_are_kept() -> None:
    text = with_ha("takeover: 30s\nrenew_every: 10s\nwake_ups: poll\nreplica_name: pod-a.zone-1")
    ha = parse_settings(text, environ={}).ha
    assert (ha.takeover, ha.resolved_renew_every) == (timedelta(seconds=30), timedelta(seconds=10))
    assert ha.wake_ups == "poll"
    assert ha.resolved_replica_name == "pod-a.zone-1"


def test_a_renewal_over_a_third_of_the_takeover_names_both_keys_and_its_line() -> None:
    (problem,) = problems_of(with_ha("takeover: 30s\nrenew_every: 11s"))
    assert problem == (
        "c.yaml:5: ha.renew_every: 11s must be at most a third of ha.takeover (30s), so that"
        " each renewal comes before the watchdog stops the sources of a leader that failed to"
        " renew"
    )


def test_a_renewal_checked_against_the_default_takeover() -> None:
    (problem,) = problems_of(with_ha("renew_every: 6s"))
    assert problem.startswith("c.yaml:4: ha.renew_every: 6s must be at most a third")
    assert "(15s)" in problem


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("wake_ups: listen", "ha.wake_ups: input should be 'notify' or 'poll'"),
        ("takeover: 500ms", "ha.takeover: must be between 1s and 1h"),
        ("takeover: 999ms", "ha.takeover: must be between 1s and 1h"),
        ("takeover: 2h", "ha.takeover: must be between 1s and 1h"),
        ("takeover: 15", "ha.takeover: 15 is not a duration"),
        ("renew_every: 0s", "ha.renew_every: must be longer than 0s"),
        ("replica_name: 'two words'", "ha.replica_name: string should match pattern"),
        ("replica_name: ''", "ha.replica_name: string should have at least 1 character"),
        ("leader: true", "ha.leader: unknown key"),
    ],
)
def test_refused_values_are_reported_at_their_path(body: str, expected: str) -> None:
    assert any(expected in problem for problem in problems_of(with_ha(body)))


@given(takeover_ms=MILLIS, renew_ms=MILLIS)
def test_a_renewal_is_accepted_exactly_when_at_most_a_third_of_the_takeover(
    takeover_ms: int, renew_ms: int
) -> None:
    text = with_ha(f"takeover: {takeover_ms}ms\nrenew_every: {renew_ms}ms")
    takeover_fits = 1000 <= takeover_ms <= 3_600_000
    if takeover_fits and 3 * renew_ms <= takeover_ms:
        ha = parse_settings(text, environ={}).ha
        assert ha.resolved_renew_every == timedelta(milliseconds=renew_ms)
        assert ha.takeover == timedelta(milliseconds=takeover_ms)
        return
    problems = problems_of(text)
    if not takeover_fits:
        assert any("ha.takeover: must be between 1s and 1h" in p for p in problems)
    else:
        (problem,) = problems
        takeover = format_duration(timedelta(milliseconds=takeover_ms))
        assert f"must be at most a third of ha.takeover ({takeover})" in problem


@given(takeover_ms=st.integers(min_value=1000, max_value=3_600_000))
def test_the_derived_renewal_is_always_valid(takeover_ms: int) -> None:
    ha = parse_settings(with_ha(f"takeover: {takeover_ms}ms"), environ={}).ha
    assert timedelta(0) < ha.resolved_renew_every * 2 < ha.takeover


@given(takeover_ms=MILLIS, renew_ms=st.none() | MILLIS)
@example(takeover_ms=1000, renew_ms=None)  # the least accepted: a margin of 0.17s, warned
@example(takeover_ms=6000, renew_ms=2000)  # the least unwarned, renewing at a third: 1s
def test_every_steady_config_gives_the_watchdog_and_the_renewal_a_second_each(
    takeover_ms: int, renew_ms: int | None
) -> None:
    """The watchdog stops a source `margin_s` before its lease runs out (its time to drain,
    so it stops before another replica may take the lease), and the next renewal must come
    within `renewal_slack_s` of being due or a healthy source is stopped: every accepted
    config that is not `tight` (warned at start) leaves each at least a second."""
    body = f"takeover: {takeover_ms}ms" + (f"\nrenew_every: {renew_ms}ms" if renew_ms else "")
    try:
        ha = parse_settings(with_ha(body), environ={}).ha
    except ConfigError:
        return
    timing = Timing(ha.takeover, ha.resolved_renew_every)
    assert ha.tight == (takeover_ms < 6000)
    if not ha.tight:
        assert timing.margin_s >= 1.0 - 1e-9
        assert timing.renewal_slack_s >= 1.0 - 1e-9
    # Whatever the config: the source is told to stop before the lease runs out, and
    # renewed before it is told.
    stop_after_s = timing.lasting.total_seconds() - timing.margin_s
    assert ha.resolved_renew_every.total_seconds() < stop_after_s < timing.lasting.total_seconds()


@given(name=st.text(max_size=140))
@example(name="0\x1f")  # Python strips U+001F, the settings do not
@example(name=" node-1\u2028")
def test_a_replica_name_is_accepted_exactly_when_it_is_a_plain_name(name: str) -> None:
    # Quoted as JSON (a YAML subset) so the file holds exactly this text, whatever it is.
    text = with_ha("replica_name: " + _json_string(name))
    stripped = name.strip(WHITE_SPACE)
    plain = NAME.fullmatch(stripped) is not None and len(stripped) <= 128
    if plain:
        assert parse_settings(text, environ={}).ha.resolved_replica_name == stripped
    else:
        assert any("ha.replica_name" in problem for problem in problems_of(text))


def _json_string(value: str) -> str:
    return '"' + "".join(_escaped(char) for char in value) + '"'


def _escaped(char: str) -> str:
    if char in '"\\$' or not char.isprintable() or not char.isascii():
        # `$` escaped as well: `${...}` in a value is a reference, not a name.
        return f"\\u{ord(char):04x}" if ord(char) < 0x10000 else f"\\U{ord(char):08x}"
    return char


@pytest.mark.parametrize(("value", "ok"), [(1, False), (2, True), (10, True), (100, True)])
def test_pool_size_is_two_to_a_hundred(value: int, ok: bool) -> None:
    text = HEAD + f"store: {{url: 'postgresql://u@db/x', pool_size: {value}}}\n"
    if ok:
        assert parse_settings(text, environ={}).store.pool_size == value
    else:
        (problem,) = problems_of(text)
        assert "store.pool_size: input should be greater than or equal to 2" in problem


@given(value=st.integers())
def test_any_pool_size_outside_the_range_is_refused(value: int) -> None:
    text = HEAD + f"store: {{pool_size: {value}}}\n"
    if 2 <= value <= 100:
        assert parse_settings(text, environ={}).store.pool_size == value
    else:
        assert any("store.pool_size" in problem for problem in problems_of(text))
