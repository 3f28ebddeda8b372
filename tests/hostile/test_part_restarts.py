"""A part that keeps failing is restarted inside the process, and nothing else stops (issue 13,
item 4): the real daemon (`run_daemon`) on the emulator, a real receiver and a real SQLite file.

Every failure the sources and the pruner know of is handled where it happens, so what reaches
the supervisor is by definition unforeseen: a bug. The test makes one by wrapping the real
polling source of one trigger so that its runs fail at once until the test cures it; all the
rest (the other trigger, the store, the dispatcher, the admin server) is the daemon's own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import sftriggerd.daemon
from sftriggerd.config import parse_settings
from sftriggerd.daemon import run_daemon
from sftriggerd.supervision import RestartPolicy
from tests.acceptance.cli import free_port
from tests.acceptance.harness import SECRET, Receiver, verifying_receiver
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient

FAST = RestartPolicy(first_delay_s=0.2, max_delay_s=0.4)
FAILING = "polling:accounts"


class FailsUntilCured:
    """A real part whose runs raise at once until `cured` is set, then run as usual."""

    def __init__(self, part: Any) -> None:
        self.part = part
        self.name = part.name
        self.status = part.status
        self.cured = asyncio.Event()

    async def run(self, stopping: asyncio.Event) -> None:
        if not self.cured.is_set():
            raise KeyError("sobjects")  # what an unforeseen answer shape does to a dict
        await self.part.run(stopping)

    def not_ready_reasons(self) -> list[str]:
        return list(self.part.not_ready_reasons())


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
    failing: FailsUntilCured

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.admin + path) as response:
            body = await (response.json() if "json" in response.content_type else response.text())
            return response.status, body

    async def restarts(self) -> float:
        _, text = await self.get("/metrics")
        for line in str(text).splitlines():
            if line.startswith(f'sftriggerd_part_restarts_total{{part="{FAILING}"}}'):
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

    def triggers_delivered(self) -> list[str]:
        return sorted(body["trigger"] for body in self.hooks.bodies)


@pytest.fixture
async def daemon(
    tmp_path: Path,
    emulator: RunningEmulator,
    http: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Running]:
    build_sources = sftriggerd.daemon.build_sources
    wrapped: list[FailsUntilCured] = []

    def build_with_one_failing(*args: Any) -> Any:
        parts, statuses = build_sources(*args)
        wrapped.append(FailsUntilCured(next(p for p in parts if p.name == FAILING)))
        return [wrapped[0] if part.name == FAILING else part for part in parts], statuses

    monkeypatch.setattr(sftriggerd.daemon, "build_sources", build_with_one_failing)
    admin_port = free_port()
    async with verifying_receiver() as hooks:
        settings = settings_for(emulator.url, hooks.port, admin_port, tmp_path / "state.db")
        stopping = asyncio.Event()
        task = asyncio.create_task(run_daemon(settings, stopping, restart_policy=FAST))
        try:
            async with asyncio.timeout(10):
                while not wrapped:
                    await asyncio.sleep(0.01)
            yield Running(f"http://127.0.0.1:{admin_port}", http, hooks, task, wrapped[0])
        finally:
            stopping.set()
            await asyncio.wait_for(task, 10)


async def test_a_failing_source_restarts_while_the_other_trigger_delivers(
    daemon: Running, org: OrgClient
) -> None:
    await org.create("Account", {"Name": "Before"})
    await org.create("Contact", {"LastName": "Before"})
    readiness: list[Any] = []

    async def failing_named() -> bool:
        status, body = await daemon.get("/readyz")
        readiness.append(body)
        return status == 503 and body.get("failing_parts") == [FAILING]

    await daemon.until(failing_named)
    assert any(f"{FAILING}: failed ('sobjects')" in r for r in readiness[-1]["reasons"])
    _, triggers = await daemon.get("/api/triggers")
    accounts = next(t for t in triggers if t["name"] == "accounts")
    assert accounts["state"] == "failed" and "'sobjects'" in accounts["last_error"]
    await daemon.until(lambda: _restarted(daemon, 3))

    # Meanwhile the other trigger reads and delivers, changes made during the failures too.
    await org.create("Contact", {"LastName": "During"})
    await org.create("Account", {"Name": "During"})
    await daemon.hooks.wait_for(2, timeout_s=10)
    assert daemon.triggers_delivered() == ["contacts", "contacts"]
    status, page = await daemon.get("/?fragment=1")
    assert status == 200 and f'data-part="{FAILING}"' in page and "sobjects" in page

    # Cured: the next restart runs, the trigger catches up on what it missed, all is ready.
    daemon.failing.cured.set()
    await daemon.hooks.wait_for(4, timeout_s=10)
    assert daemon.triggers_delivered() == ["accounts", "accounts", "contacts", "contacts"]

    async def ready() -> bool:
        return (await daemon.get("/readyz"))[0] == 200

    await daemon.until(ready)
    _, triggers = await daemon.get("/api/triggers")
    assert {t["name"]: (t["state"], t["last_error"]) for t in triggers} == {
        "accounts": ("running", None),
        "contacts": ("running", None),
    }
    # A quiet period after it: no more restarts, and the next change arrives as usual.
    settled = await daemon.restarts()
    await org.create("Account", {"Name": "After"})
    await daemon.hooks.wait_for(5, timeout_s=10)
    assert await daemon.restarts() == settled
    assert (await daemon.get("/readyz"))[0] == 200
    assert daemon.hooks.unique() == len(daemon.hooks.ids) == 5


async def _restarted(daemon: Running, count: int) -> bool:
    return await daemon.restarts() >= count
