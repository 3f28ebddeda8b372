"""`migrate` and `deliveries list|redrive` through the console script, on a real SQLite file."""

import asyncio
import json
from pathlib import Path

from sftriggerd.store.sqlite import SqliteStore
from sftriggerd.store.sqlite.migrations import MIGRATIONS
from tests.acceptance.cli import run_cli
from tests.admin.test_api import seed

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "c.yaml"
    config.write_text(f"""
salesforce: {{auth: {{client_id: c, client_secret: s, username: u, password: p}}}}
store: {{url: "sqlite:///{tmp_path}/state.db"}}
triggers: [{{name: accounts, object: Account}}]
endpoints: [{{name: hook, url: "http://127.0.0.1:9/h", secret: {SECRET}}}]
""")
    return config


async def seeded(path: Path) -> list[int]:
    store = SqliteStore(path)
    await store.open()
    try:
        return await seed(store)
    finally:
        await store.close()


def test_migrate_creates_the_schema(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = run_cli("migrate", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert f"schema at version {len(MIGRATIONS)}" in result.stdout
    assert (tmp_path / "state.db").exists()


def test_list_and_redrive(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    _, dead_id = asyncio.run(seeded(tmp_path / "state.db"))
    listing = run_cli("deliveries", "list", "--config", str(config), "--status", "dead")
    assert listing.returncode == 0, listing.stderr
    header, row = listing.stdout.strip().splitlines()
    assert header.split()[:3] == ["ID", "STATUS", "ENDPOINT"]
    assert row.split()[:3] == [str(dead_id), "dead", "hook"]
    as_json = run_cli("deliveries", "list", "--config", str(config), "--json")
    assert sorted(r["status"] for r in json.loads(as_json.stdout)) == [
        "dead",
        "delivered",
        "in_flight",  # seed() claimed the third and never finished it
    ]
    redrive = run_cli(
        "deliveries", "redrive", "--config", str(config), "--endpoint", "hook", "--status", "dead"
    )
    assert redrive.returncode == 0 and "1 dead deliveries of hook" in redrive.stdout
    again = run_cli("deliveries", "redrive", "--config", str(config), "--id", str(dead_id))
    assert again.returncode == 2 and "is pending; only dead ones redrive" in again.stderr


def test_redrive_usage_errors(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    neither = run_cli("deliveries", "redrive", "--config", str(config))
    assert neither.returncode == 2 and "either --id" in neither.stderr
    unknown = run_cli(
        "deliveries", "redrive", "--config", str(config), "--endpoint", "nope", "--status", "dead"
    )
    assert unknown.returncode == 2 and "no endpoint named 'nope'" in unknown.stderr
    assert "Traceback" not in neither.stderr + unknown.stderr


def test_triggers_status_from_the_store_when_the_daemon_is_down(tmp_path: Path) -> None:
    from sftriggerd.store.records import Checkpoint

    config = write_config(tmp_path)

    async def save_checkpoint() -> None:
        store = SqliteStore(tmp_path / "state.db")
        await store.open()
        position = {"watermark": "2026-11-28T10:00:00.000Z", "id": "001A"}
        await store.ingest("accounts", [], Checkpoint(trigger="accounts", position=position))
        await store.close()

    asyncio.run(save_checkpoint())
    result = run_cli("triggers", "status", "--config", str(config))
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.strip().splitlines()
    assert header.split() == ["TRIGGER", "MODE", "TRANSPORT", "STATE", "LAG", "CHECKPOINT"]
    assert row.split()[:4] == ["accounts", "auto", "cometd", "stopped"]
    assert row.endswith("2026-11-28T10:00:00.000Z 001A")
    as_json = json.loads(run_cli("triggers", "status", "--config", str(config), "--json").stdout)
    assert as_json[0]["checkpoint"] == "2026-11-28T10:00:00.000Z 001A"
    assert as_json[0]["transport"] == "cometd"
