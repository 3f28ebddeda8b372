"""A part that keeps failing is restarted inside the process, and nothing else stops (issue 13,
item 4): the real daemon (`run_daemon`) on the emulator, a real receiver and a real SQLite file.

The fault is real too: an SQL trigger in the store's own file makes the pruner's DELETE fail,
so the pruner meets a `StoreError` on every run, as it would on a damaged or locked table.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sftriggerd.config import parse_settings
from sftriggerd.daemon import run_daemon
from sftriggerd.store.records import Checkpoint, Delivered, NewEvent
from sftriggerd.store.sqlite import SqliteStore
from sftriggerd.supervision import RestartPolicy
from tests.acceptance.cli import free_port
from tests.acceptance.harness import SECRET, Receiver, receiver
from tests.emulator.conftest import RunningEmulator, emulator, emulator_settings, http, org
from tests.emulator.sfclient import OrgClient

__all__ = ["emulator", "emulator_settings", "http", "org"]

FAST = RestartPolicy(first_delay_s=0.2, max_delay_s=0.4)
OLD_DELIVERIES = """
SELECT count(*) FROM deliveries JOIN events ON events.seq = deliveries.event_seq
WHERE events.event_id = 'evt_old'
"""
BREAK_PRUNE = """
CREATE TRIGGER break_prune BEFORE DELETE ON deliveries
BEGIN SELECT RAISE(ABORT, 'injected: the deliveries table refuses deletes'); END;
"""


async def seed_prunable(path: Path) -> None:
    """One delivery delivered a month ago, so the pruner has a row to delete at start."""
    store = SqliteStore(path)
    await store.open()
    try:
        month_ago = datetime.now(UTC) - timedelta(days=30)
        old = NewEvent("evt_old", "001old", month_ago, b"{}", ("receiver",))
        await store.ingest("accounts", [old], Checkpoint(trigger="old", position={}))
        claim, *_ = await store.claim_due("receiver", 1, timedelta(seconds=30), datetime.now(UTC))
        await store.record_outcome(claim, Delivered(status=204, at=month_ago))
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        db.executescript(BREAK_PRUNE)


def settings_for(emulator_url: str, receiver_port: int, admin_port: int, db: Path) -> Any:
    trigger = "{name: %s, object: %s, mode: polling, fields: [Id], poll_interval: 1s,"
    trigger += " poll_delay: 0s, start_from: earliest}"
    return parse_settings(
        f"""
salesforce:
  login_url: {emulator_url}
  auth: {{client_id: emulator-client, client_secret: emulator-secret,
          username: admin@emulator.local, password: emulator}}
store: {{url: "sqlite:///{db}"}}
triggers:
  - {trigger % ("accounts", "Account")}
  - {trigger % ("contacts", "Contact")}
endpoints:
  - {{name: receiver, url: "http://127.0.0.1:{receiver_port}/hook", secret: {SECRET},
      timeout: 5s, retry: {{schedule: [200ms], max_age: 10m}}}}
server: {{listen: "127.0.0.1:{admin_port}", shutdown_grace: 1s}}
""",
        environ={},
    )


@dataclass
class Running:
    admin: str
    http: aiohttp.ClientSession
    hooks: Receiver
    task: asyncio.Task[None]

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.admin + path) as response:
            body = await (response.json() if "json" in response.content_type else response.text())
            return response.status, body

    async def restarts(self) -> float:
        _, text = await self.get("/metrics")
        for line in str(text).splitlines():
            if line.startswith('sftriggerd_part_restarts_total{part="pruner"}'):
                return float(line.split()[-1])
        return 0.0

    async def until(self, check: Any, timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while True:
                assert not self.task.done(), "the daemon stopped"
                with contextlib.suppress(aiohttp.ClientConnectionError):  # not listening yet
                    if await check():
                        return
                await asyncio.sleep(0.05)


@pytest.fixture
async def daemon(
    tmp_path: Path, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> AsyncIterator[Running]:
    db = tmp_path / "state.db"
    await seed_prunable(db)
    admin_port = free_port()
    async with receiver() as hooks:
        settings = settings_for(emulator.url, hooks.port, admin_port, db)
        stopping = asyncio.Event()
        task = asyncio.create_task(run_daemon(settings, stopping, restart_policy=FAST))
        try:
            yield Running(f"http://127.0.0.1:{admin_port}", http, hooks, task)
        finally:
            stopping.set()
            await asyncio.wait_for(task, 10)


async def test_a_failing_pruner_restarts_while_both_triggers_deliver(
    daemon: Running, org: OrgClient, tmp_path: Path
) -> None:
    await org.create("Account", {"Name": "Before"})
    await org.create("Contact", {"LastName": "Before"})

    readiness: list[Any] = []

    async def failing_named() -> bool:
        status, body = await daemon.get("/readyz")
        readiness.append(body)
        return status == 503 and body.get("failing_parts") == ["pruner"]

    await daemon.until(failing_named)
    reasons = readiness[-1]["reasons"]
    assert any("pruner" in reason and "refuses deletes" in reason for reason in reasons)
    await daemon.until(lambda: _at_least(daemon, 2))

    # Meanwhile, both triggers keep delivering, including changes made during the failures.
    await org.create("Account", {"Name": "During"})
    await org.create("Contact", {"LastName": "During"})
    await daemon.hooks.wait_for(4, timeout_s=10)
    assert sorted(body["trigger"] for body in daemon.hooks.bodies) == [
        "accounts",
        "accounts",
        "contacts",
        "contacts",
    ]
    status, page = await daemon.get("/?fragment=1")
    assert status == 200 and 'data-part="pruner"' in page and "refuses deletes" in page
    _, parts = await daemon.get("/api/parts")
    (pruner,) = [part for part in parts if part["name"] == "pruner"]
    assert pruner["restarts"] >= 2 and "refuses deletes" in pruner["last_error"]

    # The fault goes away: the next restart prunes, the daemon is ready, and stays so.
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute("DROP TRIGGER break_prune")

    async def pruned_and_ready() -> bool:
        with sqlite3.connect(tmp_path / "state.db") as db:
            (old,) = db.execute(OLD_DELIVERIES).fetchone()
        return old == 0 and (await daemon.get("/readyz"))[0] == 200

    # Once the pruner has pruned, it sleeps for an hour: no failure can follow.
    await daemon.until(pruned_and_ready)
    settled = await daemon.restarts()
    await org.create("Account", {"Name": "After"})
    await daemon.hooks.wait_for(5, timeout_s=10)
    assert await daemon.restarts() == settled
    assert (await daemon.get("/readyz"))[0] == 200
    with sqlite3.connect(tmp_path / "state.db") as db:
        (remaining,) = db.execute("SELECT count(*) FROM deliveries").fetchone()
    assert remaining == 5  # all but the month-old delivery


async def _at_least(daemon: Running, count: int) -> bool:
    return await daemon.restarts() >= count
