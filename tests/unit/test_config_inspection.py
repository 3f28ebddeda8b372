"""Commands that only inspect the store load the file without the secrets they never read."""

from __future__ import annotations

import time

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sftriggerd.config import Settings, parse_settings
from sftriggerd.config.inspection import STAND_IN_SECRET
from sftriggerd.errors import ConfigError
from tests.unit.test_config_properties import PLACES, VALID, environ, values

# Every secret a deployment keeps out of the file, by reference; none of the variables set.
BY_REFERENCE = """
salesforce:
  login_url: ${SF_LOGIN_URL}
  auth:
    flow: jwt
    client_id: ${SF_CLIENT_ID}
    username: ${SF_USERNAME}
    private_key: ${file:/nonexistent/sf.key}
store: {url: "sqlite:///state.db"}
triggers: [{name: accounts, object: Account}]
endpoints:
  - name: hook
    url: http://127.0.0.1:9/hook
    secret: ${WEBHOOK_SECRET}
    headers: {Authorization: "Bearer ${HOOK_TOKEN}"}
server: {listen: "127.0.0.1:8181", admin_token: "${ADMIN_TOKEN}"}
"""


def test_unset_secrets_are_problems_for_run_and_stand_ins_for_inspection() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_settings(BY_REFERENCE, "c.yaml", {})
    problems = "\n".join(raised.value.problems)
    for name in ("SF_CLIENT_ID", "WEBHOOK_SECRET", "HOOK_TOKEN", "ADMIN_TOKEN", "sf.key"):
        assert name in problems
    loaded = parse_settings(BY_REFERENCE, "c.yaml", {}, inspect_only=True)
    assert loaded.store.url == "sqlite:///state.db"
    assert [t.name for t in loaded.triggers] == ["accounts"]
    assert [e.name for e in loaded.endpoints] == ["hook"]
    assert loaded.endpoints[0].secret[0].get_secret_value() == STAND_IN_SECRET
    assert loaded.server.port == 8181 and loaded.server.admin_token is None
    assert loaded.salesforce.auth.client_id.startswith("(not resolved")


@pytest.mark.parametrize(
    ("place", "text"),
    [
        ("store: {url: '${STORE_URL}'}", "STORE_URL"),
        ("triggers: [{name: '${TRIGGER}', object: Account}]", "TRIGGER"),
        ("endpoints: [{name: e, url: '${HOOK_URL}', secret: x}]", "HOOK_URL"),
        ("server: {listen: '${LISTEN}'}", "LISTEN"),
    ],
)
def test_what_inspection_reads_must_still_resolve(place: str, text: str) -> None:
    config = "salesforce: {auth: {client_id: c, client_secret: s, username: u, password: p}}\n"
    with pytest.raises(ConfigError) as raised:
        parse_settings(config + place, "c.yaml", {}, inspect_only=True)
    assert any(text in problem for problem in raised.value.problems)


def inspected(text: str, env: dict[str, str]) -> Settings | None:
    started = time.monotonic()
    try:
        return parse_settings(text, "c.yaml", env, inspect_only=True)
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) for p in exc.problems)
        return None
    finally:
        assert time.monotonic() - started < 2.0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PLACES), values, environ)
def test_a_file_valid_for_run_loads_the_same_for_inspection(
    place: tuple[str | int, ...], value: object, env: dict[str, str]
) -> None:
    data = yaml.safe_load(VALID)
    parent = data
    for key in place[:-1]:
        parent = parent.setdefault(key, {}) if isinstance(key, str) else parent[key]
    parent[place[-1]] = value
    text = yaml.safe_dump(data, allow_unicode=True)
    loaded = inspected(text, env)
    try:
        strict = parse_settings(text, "c.yaml", env)
    except ConfigError:
        return
    # Stand-ins replace only what could not be resolved: a file that resolves is unchanged.
    assert loaded == strict


def test_a_secret_list_in_rollover_loads_for_inspection_with_each_secret_unset() -> None:
    rollover = BY_REFERENCE.replace(
        "secret: ${WEBHOOK_SECRET}", 'secret: ["${OLD_SECRET}", "${NEW_SECRET}"]'
    )
    with pytest.raises(ConfigError) as raised:
        parse_settings(rollover, "c.yaml", {})
    assert "OLD_SECRET" in "\n".join(raised.value.problems)
    loaded = parse_settings(rollover, "c.yaml", {}, inspect_only=True)
    assert len(loaded.endpoints[0].secret) == 2
    assert loaded.endpoints[0].secret[0].get_secret_value() == STAND_IN_SECRET
