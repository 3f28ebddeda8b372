"""Several `sftriggerd run` replicas on one PostgreSQL database, the emulator, and a receiver that
fails a share of requests: what the replica chaos and paused-leader tests share."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from tests.acceptance.cli import free_port
from tests.acceptance.harness import SECRET, Process, start

STREAMED = "accounts"
POLLED = "contacts"
CHANNEL = "/data/AccountChangeEvent"
TRIGGERS = f"""  - {{name: {STREAMED}, object: Account, mode: streaming, fields: [Name],
      start_from: latest}}
  - {{name: {POLLED}, object: Contact, mode: polling, fields: [LastName],
      poll_interval: 1s, poll_delay: 0s, start_from: earliest}}"""


@dataclass
class FlakyReceiver:
    """Verifies every signature; answers 503 to `failing` of the requests, at random."""

    failing: float
    port: int = field(default_factory=free_port)
    accepted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    requests: int = 0
    bad_signatures: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.requests += 1
        try:
            Webhook(SECRET).verify(raw, dict(request.headers))
        except Exception:
            self.bad_signatures += 1
            return web.Response(status=401)
        if self.rng.random() < self.failing:
            return web.Response(status=503)
        self.accepted.append((request.headers["webhook-id"], json.loads(raw)))
        return web.Response(status=204)


@contextlib.asynccontextmanager
async def flaky_receiver(failing: float) -> AsyncIterator[FlakyReceiver]:
    state = FlakyReceiver(failing)
    app = web.Application()
    app.router.add_post("/hook", state.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", state.port).start()
    try:
        yield state
    finally:
        await runner.cleanup()


def write_config(
    path: Path,
    name: str,
    store_url: str,
    emulator_url: str,
    receiver_port: int,
    admin_port: int,
    takeover: str,
    pool_size: int = 10,
) -> None:
    path.write_text(f"""
salesforce:
  login_url: {emulator_url}
  auth: {{client_id: emulator-client, client_secret: emulator-secret,
          username: admin@emulator.local, password: emulator}}
store: {{url: "{store_url}", pool_size: {pool_size}}}
ha: {{takeover: {takeover}, replica_name: {name}}}
triggers:
{TRIGGERS}
endpoints:
  - {{name: receiver, url: "http://127.0.0.1:{receiver_port}/hook", secret: {SECRET},
      timeout: 5s, max_in_flight: 8, retry: {{schedule: [100ms, 300ms, 1s], max_age: 30m}}}}
server: {{listen: "127.0.0.1:{admin_port}", shutdown_grace: 5s}}
logging: {{level: info, format: json}}
""")


@dataclass
class Replica:
    """One replica slot: each start is a new process with a new replica name (`r1.2` is slot
    r1's second process), so the lease holder shows which process leads."""

    slot: str
    tmp_path: Path
    store_url: str
    emulator_url: str
    receiver_port: int
    takeover: str
    pool_size: int = 10
    admin_port: int = field(default_factory=free_port)
    process: Process | None = None
    started: int = 0

    @property
    def name(self) -> str:
        return f"{self.slot}.{self.started}"

    @property
    def log(self) -> Path:
        return self.tmp_path / f"{self.slot}.log"

    async def start(self) -> None:
        self.started += 1
        config = self.tmp_path / f"{self.slot}.yaml"
        write_config(
            config,
            self.name,
            self.store_url,
            self.emulator_url,
            self.receiver_port,
            self.admin_port,
            self.takeover,
            self.pool_size,
        )
        self.process = await start(["run", "--config", str(config)], self.log)

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.process.send_signal(signum)

    async def kill(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.process is not None
        await asyncio.wait_for(self.process.process.wait(), 10)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.process.returncode is None

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


async def leaders(http: aiohttp.ClientSession, replicas: list[Replica]) -> dict[str, str]:
    """Trigger -> the replica leading it, as any running replica's admin API reports it."""
    for replica in replicas:
        if not replica.running:
            continue
        url = f"http://127.0.0.1:{replica.admin_port}/api/replicas"
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                if response.status == 200:
                    return {
                        trigger: view["name"]
                        for view in await response.json()
                        for trigger in view["triggers"]
                    }
    return {}


def overlapping_subscribers(spans: list[dict[str, str]]) -> list[str]:
    """Pairs of subscriptions of one channel whose live spans overlap in time."""
    parsed = sorted(
        (datetime.fromisoformat(s["first"]), datetime.fromisoformat(s["last"]), s["client"])
        for s in spans
    )
    found = []
    for index, (first, last, client) in enumerate(parsed):
        for other_first, other_last, other in parsed[index + 1 :]:
            if other_first < last and other != client:
                overlap = f"[{first}..{last}] and {other} [{other_first}..{other_last}]"
                found.append(f"{client} {overlap}")
    return found


def record_values(accepted: list[tuple[str, dict[str, Any]]]) -> dict[str, set[str]]:
    """Each Name / LastName value delivered, with the webhook-ids it came under."""
    found: dict[str, set[str]] = {}
    for webhook_id, body in accepted:
        record = body.get("record") or {}
        for key in ("Name", "LastName"):
            value = record.get(key)
            if isinstance(value, str):
                found.setdefault(value, set()).add(webhook_id)
    return found


async def wait_for_leaders(
    http: aiohttp.ClientSession, replicas: list[Replica], triggers: set[str], timeout_s: float
) -> dict[str, str]:
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                led = await leaders(http, replicas)
                if triggers <= led.keys():
                    return led
                await asyncio.sleep(0.2)
    except TimeoutError:
        logs = "\n".join(f"--- {r.slot}\n{r.log_tail()}" for r in replicas)
        raise AssertionError(f"no leader for {triggers} within {timeout_s}s\n{logs}") from None


async def wait_until_reading(postgres_url: str, trigger: str, timeout_s: float) -> None:
    """Until the trigger's leader has subscribed and stored where it started: a trigger that
    starts from `latest` does not see changes made before that, by design."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
            cursor = await conn.execute("SELECT 1 FROM checkpoints WHERE trigger = %s", (trigger,))
            if await cursor.fetchone() is not None:
                return
        await asyncio.sleep(0.2)
    raise AssertionError(f"trigger {trigger} had stored no starting point within {timeout_s}s")


async def wait_until_delivered(receiver: FlakyReceiver, values: set[str], timeout_s: float) -> None:
    missing = values
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        missing = values - record_values(receiver.accepted).keys()
        if not missing:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{len(missing)} changes never arrived: {sorted(missing)[:20]}")
