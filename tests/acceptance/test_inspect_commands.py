"""`deliveries show` and the rules every store command shares, through the console script on
a real SQLite file: one `--limit` rule, known names only, no store made and no secrets
needed to look."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from sftriggerd.store.sqlite import SqliteStore
from tests.acceptance.cli import run_cli
from tests.acceptance.test_store_commands import write_config
from tests.admin.test_delivery_detail import BODY, NASTY, failing_delivery

# Every secret by reference, and none of the variables set in the command's environment.
BY_REFERENCE = """
salesforce:
  auth:
    flow: jwt
    client_id: ${SFT_TEST_CLIENT_ID}
    username: ${SFT_TEST_USERNAME}
    private_key: ${file:/nonexistent/sf.key}
store: {url: "sqlite:///%s/state.db"}
triggers: [{name: accounts, object: Account}]
endpoints:
  - name: hook
    url: http://127.0.0.1:9/hook
    secret: ${SFT_TEST_WEBHOOK_SECRET}
server: {listen: "127.0.0.1:9", admin_token: "${SFT_TEST_ADMIN_TOKEN}"}
"""


def seeded(path: Path) -> int:
    async def seed() -> int:
        store = SqliteStore(path)
        await store.open()
        try:
            return await failing_delivery(store)
        finally:
            await store.close()

    return asyncio.run(seed())


def test_show_gives_the_event_and_every_attempt(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    delivery_id = seeded(tmp_path / "state.db")
    as_json = run_cli("deliveries", "show", str(delivery_id), "--config", str(config), "--json")
    assert as_json.returncode == 0, as_json.stderr
    detail = json.loads(as_json.stdout)
    [listed] = json.loads(run_cli("deliveries", "list", "--config", str(config), "--json").stdout)
    assert {key: detail[key] for key in listed} == listed
    assert detail["event"] == BODY
    assert [a["status"] for a in detail["attempt_history"]] == [503, 410]
    assert detail["attempt_history"][0]["answer"] == f"busy {NASTY}"

    text = run_cli("deliveries", "show", str(delivery_id), "--config", str(config))
    assert text.returncode == 0, text.stderr
    assert f"delivery {delivery_id}" in text.stdout and "attempts (2, oldest first):" in text.stdout
    assert "HTTP 503: busy" in text.stdout and '"Name": "Acme <b>"' in text.stdout


@pytest.mark.parametrize("given", ["999", "abc", "1_000", "-1", "٣"])
def test_show_refuses_an_unknown_or_malformed_id(tmp_path: Path, given: str) -> None:
    config = write_config(tmp_path)
    seeded(tmp_path / "state.db")
    result = run_cli("deliveries", "show", given, "--config", str(config))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    expected = "no delivery 999" if given == "999" else "delivery id must be a whole number"
    assert expected in result.stderr


@pytest.mark.parametrize(
    "command", [["deliveries", "show", "1"], ["deliveries", "list"], ["triggers", "status"]]
)
def test_inspection_never_creates_a_store(tmp_path: Path, command: list[str]) -> None:
    config = write_config(tmp_path)
    result = run_cli(*command, "--config", str(config))
    assert result.returncode == 1 and "no sqlite store at" in result.stderr
    assert not (tmp_path / "state.db").exists()


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "abc", "", "1_000", "10.5", "\u0661"])
def test_one_limit_rule(tmp_path: Path, limit: str) -> None:
    config = write_config(tmp_path)
    seeded(tmp_path / "state.db")
    result = run_cli("deliveries", "list", "--config", str(config), "--limit", limit)
    assert result.returncode == 2
    assert "--limit: must be a whole number from 1 to 1000" in result.stderr


def test_the_limit_bounds_are_accepted(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    seeded(tmp_path / "state.db")
    for limit in ("1", "1000"):
        result = run_cli("deliveries", "list", "--config", str(config), "--limit", limit, "--json")
        assert result.returncode == 0 and len(json.loads(result.stdout)) == 1


def test_unknown_endpoint_names_are_errors_with_the_known_ones(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    seeded(tmp_path / "state.db")
    for command in (
        ["deliveries", "list", "--endpoint", "nope"],
        ["deliveries", "redrive", "--endpoint", "nope", "--status", "dead"],
    ):
        result = run_cli(*command, "--config", str(config))
        assert result.returncode == 2, command
        assert "no endpoint named 'nope' in the configuration (known: hook)" in result.stderr


def test_inspection_needs_no_secrets(tmp_path: Path) -> None:
    config = tmp_path / "by-reference.yaml"
    config.write_text(BY_REFERENCE % tmp_path)
    delivery_id = seeded(tmp_path / "state.db")
    shown = run_cli("deliveries", "show", str(delivery_id), "--config", str(config), "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["id"] == delivery_id
    listing = run_cli("deliveries", "list", "--config", str(config), "--endpoint", "hook")
    assert listing.returncode == 0 and "dead" in listing.stdout, listing.stderr
    status = run_cli("triggers", "status", "--config", str(config))
    assert status.returncode == 0 and "accounts" in status.stdout, status.stderr


def test_commands_that_use_the_secrets_still_name_what_is_missing(tmp_path: Path) -> None:
    config = tmp_path / "by-reference.yaml"
    config.write_text(BY_REFERENCE % tmp_path)
    checked = run_cli("check-config", "--config", str(config))
    assert checked.returncode == 2 and "SFT_TEST_WEBHOOK_SECRET" in checked.stderr


def test_redrive_status_takes_what_its_help_says(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    helped = run_cli("deliveries", "redrive", "--help")
    assert "--status {dead}" in helped.stdout and "with --endpoint" in helped.stdout
    wrong = run_cli(
        "deliveries", "redrive", "--config", str(config), "--endpoint", "hook", "--status", "failed"
    )
    assert wrong.returncode == 2 and "invalid choice: 'failed'" in wrong.stderr


def test_redrive_status_goes_with_the_endpoint(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    delivery_id = seeded(tmp_path / "state.db")
    missing = run_cli("deliveries", "redrive", "--config", str(config), "--endpoint", "hook")
    assert missing.returncode == 2 and "needs --status dead" in missing.stderr
    with_id = run_cli(
        "deliveries",
        "redrive",
        "--config",
        str(config),
        "--id",
        str(delivery_id),
        "--status",
        "dead",
    )
    assert with_id.returncode == 2 and "--id takes no --status" in with_id.stderr
    done = run_cli(
        "deliveries", "redrive", "--config", str(config), "--endpoint", "hook", "--status", "dead"
    )
    assert done.returncode == 0 and "1 dead deliveries of hook" in done.stdout
