"""The config loader meets operator files and environments: whatever text or values they hold,
only `ConfigError` comes out (or valid settings), and quickly."""

from __future__ import annotations

import time

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sftriggerd.config import Settings, load_settings, parse_settings
from sftriggerd.errors import ConfigError

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VALID = f"""
salesforce:
  auth: {{client_id: cid, client_secret: cs, username: u, password: p}}
triggers: [{{name: t, object: Account}}]
endpoints:
  - name: e
    url: http://127.0.0.1:9/hook
    secret: {SECRET}
    retry: {{schedule: [5s, 1m], max_age: 3d}}
    breaker: {{failure_threshold: 5, cooldown: 30s, max_cooldown: 5m}}
"""
VALID_DATA = yaml.safe_load(VALID)

# Pieces of YAML that have broken parsers: anchors and aliases, merge keys, tags, odd
# scalars, references, and unbalanced brackets.
FRAGMENTS = [
    "&a ",
    "*a",
    "<<: ",
    "<<: *a",
    "!!timestamp ",
    "2001-13-45",
    "!!binary ",
    "!!int ",
    "!!python/object:os.system ",
    "!!set ",
    "!!omap ",
    "? ",
    "[",
    "]",
    "{",
    "}",
    ": ",
    "- ",
    "\n",
    "  ",
    "'",
    '"',
    "|",
    ">",
    "#",
    "${X}",
    "${X:-d}",
    "${file:/dev/zero}",
    "${file:}",
    "${file:/}",
    "$${Y}",
    "\\ud800",
    "\ud800",
    "1e999",
    "99999999999999999999d",
    "5s",
    "0x",
    "~",
    "null",
    "yes",
    "%TAG ! x\n---\n",
    "---\n",
    "...\n",
    "\t",
    "\x00",
    "\ufeff",
    "²",
]
yaml_soup = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=5), max_size=40).map("".join)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(),
    st.sampled_from(["5s", "1h30m", "9" * 30 + "d", "0s", "-1s", "http://u:p@h/", "${X}"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
environ = st.dictionaries(
    st.sampled_from(["X", "Y", "HOME", "SF"]),
    st.text(),  # surrogates included: os.environ decodes bad bytes into them
    max_size=3,
)
# Where a hostile value is put into an otherwise valid file.
PLACES = [
    ("salesforce",),
    ("salesforce", "auth", "password"),
    ("salesforce", "proxy"),
    ("salesforce", "api_version"),
    ("triggers",),
    ("triggers", 0, "poll_interval"),
    ("triggers", 0, "start_from"),
    ("endpoints", 0, "url"),
    ("endpoints", 0, "timeout"),
    ("endpoints", 0, "headers"),
    ("endpoints", 0, "retry", "schedule"),
    ("endpoints", 0, "retry", "max_age"),
    ("endpoints", 0, "breaker"),
    ("endpoints", 0, "breaker", "cooldown"),
    ("endpoints", 0, "breaker", "failure_threshold"),
    ("server",),
    ("server", "listen"),
    ("store", "url"),
    ("store", "retention"),
]


def only_config_errors(text: str, env: dict[str, str]) -> Settings | None:
    started = time.monotonic()
    try:
        return parse_settings(text, "c.yaml", env)
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) for p in exc.problems)
        for problem in exc.problems:
            problem.encode("utf-8")  # printable: no lone surrogate reaches the operator
        return None
    finally:
        assert time.monotonic() - started < 2.0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(), environ)
def test_any_text(text: str, env: dict[str, str]) -> None:
    only_config_errors(text, env)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(yaml_soup, environ)
def test_any_yaml_soup(text: str, env: dict[str, str]) -> None:
    only_config_errors(text, env)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PLACES), values, environ)
def test_any_value_anywhere(
    place: tuple[str | int, ...], value: object, env: dict[str, str]
) -> None:
    data = yaml.safe_load(VALID)
    parent = data
    for key in place[:-1]:
        parent = parent.setdefault(key, {}) if isinstance(key, str) else parent[key]
    parent[place[-1]] = value
    only_config_errors(yaml.safe_dump(data, allow_unicode=True), env)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_any_file_bytes(tmp_path_factory: pytest.TempPathFactory, content: bytes) -> None:
    path = tmp_path_factory.mktemp("cfg") / "c.yaml"
    path.write_bytes(content)
    try:
        load_settings(path, {})
    except ConfigError:
        pass


def test_the_valid_file_is_valid() -> None:
    assert only_config_errors(VALID, {}) is not None
