"""`sftriggerd check-config` through the console script: exit codes and messages."""

from pathlib import Path

import pytest

from tests.acceptance.cli import run_cli
from tests.unit.test_config import EXAMPLE, EXAMPLE_ENV, example_config

HEAD = """salesforce:
  auth: {client_id: c, client_secret: s, username: u, password: p}
"""

# Each malformed file, and the `path: message` its report must contain.
MALFORMED = [
    (
        HEAD + "triggers:\n  - {name: a, object: Account}\n  - {name: b}\n",
        "triggers[1].object: field required",
    ),
    (HEAD + "colour: blue\n", "colour: unknown key"),
    (
        HEAD + "triggers: [{name: a, object: Account, where: \"Industry = 'x' LIMIT 5\"}]\n",
        "triggers[0].where: cannot be evaluated on streamed changes:"
        " unexpected token: 'LIMIT' (column 16)",
    ),
    (
        HEAD + "triggers: [{name: a, object: Account, where: 'Name INCLUDES (1)'}]\n",
        "triggers[0].where: cannot be evaluated on streamed changes:"
        " unexpected token: 'INCLUDES' (column 6)",
    ),
    (
        HEAD + "triggers: [{name: a, object: Account, poll_interval: 10}]\n",
        "triggers[0].poll_interval: 10 is not a duration",
    ),
    (
        HEAD + "triggers: [{name: a, object: A}, {name: a, object: B}]\n",
        "triggers[1].name: 'a' is already used",
    ),
    (
        HEAD + "triggers: [{name: a, object: A}]\nendpoints:\n"
        "  - {name: e, url: 'http://h/x', secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw,"
        " triggers: [nope]}\n",
        "endpoints[0].triggers[0]: no trigger named 'nope'",
    ),
    (HEAD + "store: {url: 'mysql://h/db'}\n", "store.url: scheme 'mysql' is not supported"),
    (
        HEAD + "endpoints: [{name: e, url: 'http://h/x', secret: plain-text}]\n",
        "endpoints[0].secret: must be a Standard Webhooks secret",
    ),
    (
        HEAD.replace("}", ", api_budget: 1.5}", 0) + "  api_budget: 1.5\n",
        "salesforce.api_budget: input should be less than or equal to 1",
    ),
    (HEAD + "server: {listen: 'localhost'}\n", "server.listen: 'localhost' is not host:port"),
    (
        HEAD.replace("password: p", "password: '${SFT_TEST_UNSET_VAR}'"),
        "salesforce.auth.password: environment variable SFT_TEST_UNSET_VAR is not set",
    ),
    (
        "salesforce:\n  auth: {flow: jwt, client_id: c}\n",
        "salesforce.auth.private_key: field required for the jwt flow",
    ),
    (
        HEAD
        + "endpoints: [{name: e, url: 'ftp://h/x', secret: "
        + "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}]\n",
        "endpoints[0].url: 'ftp://h/x' is not an http(s) URL",
    ),
    (HEAD + "logging: {format: xml}\n", "logging.format: input should be 'json' or 'console'"),
    (
        HEAD + "triggers: [{name: a, channel: /event/X__e, mode: polling}]\n",
        "triggers[0].mode: channel /event/X__e cannot be polled",
    ),
    ("salesforce: [1, 2\n", "(top level): not valid YAML"),
    (
        HEAD + "endpoints:\n  - name: e\n    url: 'http://h/x'\n    secret:\n"
        "      - whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n      - plain-text\n",
        "bad.yaml:8: endpoints[0].secret[1]: must be a Standard Webhooks secret",
    ),
    (
        HEAD + "endpoints: [{name: e, url: 'http://h/x', secret: []}]\n",
        "endpoints[0].secret: needs at least one secret",
    ),
    # Names are keys of the store's indexes and PostgreSQL NOTIFY payloads: bounded.
    (
        HEAD + f"triggers: [{{name: {'t' * 101}, object: Account}}]\n",
        "bad.yaml:3: triggers[0].name: string should have at most 100 characters",
    ),
    (
        HEAD + f"endpoints: [{{name: {'e' * 101}, url: 'http://h/x', secret: "
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}]\n",
        "bad.yaml:3: endpoints[0].name: string should have at most 100 characters",
    ),
]


@pytest.mark.parametrize(("content", "expected"), MALFORMED)
def test_malformed_file_exits_2_with_its_path(tmp_path: Path, content: str, expected: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(content)
    result = run_cli("check-config", "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert str(config) in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_the_example_file_passes(tmp_path: Path) -> None:
    result = run_cli("check-config", "--config", str(example_config(tmp_path)), env=EXAMPLE_ENV)
    assert result.returncode == 0, result.stderr
    assert "ok (2 triggers, 1 endpoints, store sqlite)" in result.stdout


def test_the_example_without_its_key_file_names_the_path(tmp_path: Path) -> None:
    result = run_cli("check-config", "--config", str(EXAMPLE), env=EXAMPLE_ENV)
    assert result.returncode == 2
    expected = "salesforce.auth.private_key: cannot read ${file:/etc/sftriggerd/sf-jwt.key}"
    assert expected in result.stderr


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    result = run_cli("check-config", "--config", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2
    assert "cannot read" in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2() -> None:
    result = run_cli("check-config")
    assert result.returncode == 2
    assert "--config" in result.stderr


def test_a_rollover_in_progress_passes_and_is_pointed_out(tmp_path: Path) -> None:
    config = tmp_path / "rollover.yaml"
    config.write_text(
        HEAD
        + 'endpoints:\n  - name: crm\n    url: \'http://h/x\'\n    secret: ["${OLD}", "${NEW}"]\n'
        "  - name: quiet\n    url: 'http://h/y'\n    secret: ${OLD}\n"
    )
    old = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    new = "whsec_" + "Q" * 24
    result = run_cli("check-config", "--config", str(config), env={"OLD": old, "NEW": new})
    assert result.returncode == 0, result.stderr
    assert "ok (0 triggers, 2 endpoints" in result.stdout
    assert "endpoint crm: signs with 2 secrets" in result.stdout
    assert "quiet" not in result.stdout
    assert old not in result.stdout + result.stderr and new not in result.stdout + result.stderr


def test_a_polling_only_trigger_may_use_soql_beyond_the_evaluator(tmp_path: Path) -> None:
    """Only streamed changes need the daemon's evaluator; Salesforce reads a poll's condition."""
    where = "Owner.Name = 'x' AND CreatedDate = LAST_N_DAYS:7"
    config = tmp_path / "polling.yaml"
    config.write_text(HEAD + f'triggers: [{{name: a, object: Account, where: "{where}"}}]\n')
    assert run_cli("check-config", "--config", str(config)).returncode == 2
    polling = tmp_path / "polling-only.yaml"
    polling.write_text(
        HEAD + f'triggers: [{{name: a, object: Account, mode: polling, where: "{where}"}}]\n'
    )
    result = run_cli("check-config", "--config", str(polling))
    assert result.returncode == 0, result.stderr


def test_ha_on_a_sqlite_store_passes_with_a_note(tmp_path: Path) -> None:
    config = tmp_path / "ha.yaml"
    config.write_text(HEAD + "ha: {takeover: 30s}\n")
    result = run_cli("check-config", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "note: ha has no effect on a sqlite store" in result.stdout
    postgresql = tmp_path / "ha-postgresql.yaml"
    postgresql.write_text(HEAD + "store: {url: 'postgresql://u@db/x'}\nha: {takeover: 30s}\n")
    result = run_cli("check-config", "--config", str(postgresql))
    assert result.returncode == 0, result.stderr
    assert "store postgresql" in result.stdout and "note" not in result.stdout


def test_a_renewal_too_slow_for_the_takeover_exits_2_naming_the_path(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(HEAD + "ha:\n  takeover: 10s\n  renew_every: 4s\n")
    result = run_cli("check-config", "--config", str(config))
    assert result.returncode == 2
    assert f"{config}:5: ha.renew_every: 4s must be at most a third of ha.takeover (10s)" in (
        result.stderr
    )


def test_plaintext_pub_sub_to_another_host_passes_with_a_warning(tmp_path: Path) -> None:
    trigger = "triggers: [{name: a, object: Account, transport: pubsub}]\n"
    config = tmp_path / "plaintext.yaml"
    config.write_text(HEAD + "  pubsub_url: http://emulator:7443\n" + trigger)
    result = run_cli("check-config", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "warning: salesforce.pubsub_url 'http://emulator:7443' is plaintext" in result.stdout
    assert "pubsub_allow_plaintext: true" in result.stdout
    allowed = tmp_path / "allowed.yaml"
    allowed.write_text(
        HEAD + "  pubsub_url: http://emulator:7443\n  pubsub_allow_plaintext: true\n" + trigger
    )
    quiet = run_cli("check-config", "--config", str(allowed))
    assert quiet.returncode == 0 and "warning" not in quiet.stdout
