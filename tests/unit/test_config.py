"""Configuration parsing: references, defaults, every rule, and messages with YAML paths."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from sftriggerd.config import load_settings, parse_settings
from sftriggerd.errors import ConfigError
from tests.keys import rsa_key_pair

EXAMPLE = Path(__file__).parents[2] / "config" / "sftriggerd.example.yaml"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
EXAMPLE_ENV = {
    "SF_CLIENT_ID": "3MVG9-client",
    "SF_CLIENT_SECRET": "client-secret-1",
    "SF_USERNAME": "integration@example.com",
    "SF_PASSWORD": "hunter2",
    "CRM_SYNC_SECRET": SECRET,
    "CRM_TOKEN": "crm-token-9",
}

# Where the example reads the JWT flow's private key (docs/operations.md installs it there).
EXAMPLE_KEY_PATH = "/etc/sftriggerd/sf-jwt.key"


def example_config(directory: Path) -> Path:
    """The example file as an operator installs it: with its private key file in place (a
    throwaway key in `directory`, since the test cannot write to /etc)."""
    text = EXAMPLE.read_text()
    assert "${file:" + EXAMPLE_KEY_PATH + "}" in text
    key = directory / "sf-jwt.key"
    key.write_text(rsa_key_pair()[0])
    copy = directory / "sftriggerd.example.yaml"
    copy.write_text(text.replace(EXAMPLE_KEY_PATH, str(key)))
    return copy


MINIMAL = """
salesforce:
  auth: {client_id: cid, client_secret: cs, username: u, password: p}
"""


def problems_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, "c.yaml", env or {})
    return caught.value.problems


def test_example_file_is_valid_and_complete(tmp_path: Path) -> None:
    settings = load_settings(example_config(tmp_path), EXAMPLE_ENV)
    auth = settings.salesforce.auth
    assert (auth.flow, auth.client_id, auth.username) == (
        "jwt",
        "3MVG9-client",
        EXAMPLE_ENV["SF_USERNAME"],
    )
    assert auth.private_key is not None
    assert auth.private_key.get_secret_value().startswith("-----BEGIN PRIVATE KEY-----")
    assert auth.password is None and auth.client_secret is None
    account, order = settings.triggers
    assert account.object == "Account"
    assert account.poll_interval == timedelta(seconds=60)
    assert account.resolved_channel == "/data/AccountChangeEvent"
    assert order.channel_kind == "platform_event"
    assert order.object is None
    endpoint = settings.endpoints[0]
    assert endpoint.retry.schedule[-1] == timedelta(hours=10)
    assert endpoint.retry.max_age == timedelta(days=3)
    assert endpoint.headers == {"Authorization": "Bearer crm-token-9"}
    assert endpoint.secret_key.startswith(b"1\xf2")
    assert settings.server.admin_token is None
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8080)


def test_defaults_of_a_minimal_file() -> None:
    settings = parse_settings(MINIMAL, environ={})
    assert settings.salesforce.login_url == "https://login.salesforce.com"
    assert settings.salesforce.api_version == "60.0"
    assert settings.salesforce.api_budget == 0.5
    assert settings.store.engine == "sqlite"
    assert settings.server.shutdown_grace == timedelta(seconds=20)
    assert settings.logging.format == "json"
    assert settings.triggers == ()


def test_settings_are_frozen() -> None:
    settings = parse_settings(MINIMAL, environ={})
    with pytest.raises(ValidationError):
        settings.server.listen = "0.0.0.0:1"  # type: ignore[misc]


def test_variables_defaults_and_escapes() -> None:
    text = (
        MINIMAL
        + """
server:
  listen: ${HOST:-127.0.0.1}:${PORT}
  admin_token: "$${NOT_A_REFERENCE}"
"""
    )
    settings = parse_settings(text, environ={"PORT": "9090"})
    assert settings.server.listen == "127.0.0.1:9090"
    assert settings.server.admin_token is not None
    assert settings.server.admin_token.get_secret_value() == "${NOT_A_REFERENCE}"


def test_file_reference_strips_the_trailing_newline(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    text = (
        MINIMAL
        + f"""
triggers: [{{name: t, object: Account}}]
endpoints:
  - {{name: e, url: "http://127.0.0.1:9/hook", secret: "${{file:{secret_file}}}"}}
"""
    )
    settings = parse_settings(text, environ={})
    assert [s.get_secret_value() for s in settings.endpoints[0].secret] == [SECRET]


def test_missing_file_reference_names_the_path(tmp_path: Path) -> None:
    text = MINIMAL.replace("p}", '"${file:' + str(tmp_path / "nope") + '}"}')
    [problem] = problems_of(text)
    assert "salesforce.auth.password: cannot read ${file:" in problem


def test_missing_variable_names_variable_and_path() -> None:
    text = MINIMAL.replace("password: p", "password: '${SF_PASSWORD}'")
    [problem] = problems_of(text)
    assert problem.startswith("c.yaml:3: salesforce.auth.password: ")
    assert "SF_PASSWORD is not set" in problem


def test_every_problem_is_reported_at_once() -> None:
    text = """
salesforce:
  auth: {client_id: cid, client_secret: cs, username: u, password: p, colour: blue}
  api_budget: 0
store: {url: "mysql://db"}
triggers:
  - {name: a, object: Account, poll_interval: soon}
  - {name: a, mode: polling, channel: /event/Thing__e}
endpoints:
  - {name: e, url: "http://x", secret: "whsec_@@@", triggers: [a, b]}
server: {listen: nowhere}
logging: {level: loud}
"""
    joined = "\n".join(problems_of(text))
    for expected in [
        "c.yaml:3: salesforce.auth.colour: unknown key",
        "salesforce.api_budget: input should be greater than 0",
        "store.url: scheme 'mysql' is not supported",
        "triggers[0].poll_interval: 'soon' is not a duration",
        "triggers[1].name: 'a' is already used by triggers[0]",
        "triggers[1].mode: channel /event/Thing__e cannot be polled",
        "endpoints[0].secret: the part after whsec_ is not valid base64",
        "endpoints[0].triggers[1]: no trigger named 'b' (known: a)",
        "server.listen: 'nowhere' is not host:port",
        "logging.level: input should be 'debug', 'info', 'warning' or 'error'",
    ]:
        assert expected in joined


def test_problems_are_sorted_by_line() -> None:
    problems = problems_of("salesforce: {auth: {client_id: x}}\nbogus: 1\n")
    lines = [int(p.split(":")[1]) for p in problems]
    assert lines == sorted(lines)


@pytest.mark.parametrize(
    ("trigger", "ok"),
    [
        ("{name: t, object: Account}", True),
        ("{name: t, channel: /event/Order_Placed__e}", True),
        ("{name: t, channel: /u/Notifications}", True),
        ("{name: t, channel: /data/AccountChangeEvent}", False),
        ("{name: t, channel: /topic/AccountUpdates}", False),
        ("{name: t}", False),
    ],
)
def test_object_is_required_unless_platform_event_or_generic(trigger: str, ok: bool) -> None:
    text = MINIMAL + f"triggers: [{trigger}]\n"
    if ok:
        parse_settings(text, environ={})
    else:
        assert any("triggers[0].object: field required" in p for p in problems_of(text))


@pytest.mark.parametrize(
    ("flow", "missing"),
    [
        ("password", ["username", "password", "client_secret"]),
        ("jwt", ["username", "private_key"]),
        ("client_credentials", ["client_secret"]),
        ("refresh_token", ["refresh_token"]),
    ],
)
def test_each_flow_names_what_it_needs(flow: str, missing: list[str]) -> None:
    problems = problems_of(f"salesforce: {{auth: {{flow: {flow}, client_id: c}}}}\n")
    for key in missing:
        assert f"salesforce.auth.{key}: field required for the {flow} flow" in "\n".join(problems)


def test_custom_object_cdc_channel_and_start_time() -> None:
    text = MINIMAL + "triggers: [{name: t, object: Invoice__c, start_from: 2026-01-02T03:04:05Z}]"
    trigger = parse_settings(text, environ={}).triggers[0]
    assert trigger.resolved_channel == "/data/Invoice__ChangeEvent"
    assert trigger.start_from == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_start_time_needs_a_zone() -> None:
    text = MINIMAL + "triggers: [{name: t, object: A, start_from: '2026-01-02T03:04:05'}]"
    assert any("give the time zone" in p for p in problems_of(text))


@pytest.mark.parametrize(
    ("url", "path"),
    [("sqlite:///state.db", "state.db"), ("sqlite:////var/lib/s.db", "/var/lib/s.db")],
)
def test_sqlite_paths(url: str, path: str) -> None:
    settings = parse_settings(MINIMAL + f"store: {{url: '{url}'}}\n", environ={})
    assert settings.store.sqlite_path == path


def test_ipv6_listen_and_postgres_store() -> None:
    text = MINIMAL + "store: {url: 'postgresql://u@h/db'}\nserver: {listen: '[::1]:8081'}\n"
    settings = parse_settings(text, environ={})
    assert settings.store.engine == "postgresql"
    assert (settings.server.host, settings.server.port) == ("::1", 8081)


def test_duplicate_keys_are_errors() -> None:
    problems = problems_of(MINIMAL + "logging: {level: info}\nlogging: {level: debug}\n")
    assert any("logging: duplicate key" in p for p in problems)


def test_yaml_syntax_error_has_a_line() -> None:
    [problem] = problems_of("salesforce:\n  auth: [unclosed\n")
    assert "not valid YAML" in problem
    assert "(line " in problem


def test_secrets_are_listed_for_the_redactor(tmp_path: Path) -> None:
    settings = load_settings(example_config(tmp_path), EXAMPLE_ENV)
    secrets = settings.secrets()
    assert {SECRET, "Bearer crm-token-9"} <= set(secrets)
    assert settings.salesforce.auth.private_key is not None
    assert settings.salesforce.auth.private_key.get_secret_value() in secrets
    assert "integration@example.com" not in secrets


def test_the_example_password_flow_works_when_uncommented() -> None:
    """The commented alternative is a working block, not a sketch: swapped in for the JWT
    block, the example validates with the password flow, and its secrets are redacted."""
    lines = EXAMPLE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "flow: jwt")
    end = next(i for i, line in enumerate(lines) if line.strip() == "# flow: password")
    indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
    alternative = []
    for line in lines[end:]:
        if not line.startswith(indent + "# "):
            break
        alternative.append(indent + line.removeprefix(indent + "# "))
    text = "\n".join([*lines[:start], *alternative, *lines[end + len(alternative) :]])
    env = {**EXAMPLE_ENV, "SF_REFRESH_TOKEN": "refresh-7"}
    settings = parse_settings(text, "example", env)
    auth = settings.salesforce.auth
    assert auth.flow == "password" and auth.private_key is None
    assert auth.password is not None and auth.password.get_secret_value() == "hunter2"
    assert auth.security_token is None  # ${SF_SECURITY_TOKEN:-} -> unset
    assert {"client-secret-1", "hunter2", "refresh-7"} <= set(settings.secrets())
