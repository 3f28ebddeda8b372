"""Processes and a receiver for end-to-end tests: the emulator and the daemon run as
subprocesses through the console script; the receiver verifies every signature."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from tests.acceptance.cli import free_port, sftriggerd_command

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
LOGIN = {
    "grant_type": "password",
    "client_id": "emulator-client",
    "client_secret": "emulator-secret",
    "username": "admin@emulator.local",
    "password": "emulator",
}


@dataclass
class Receiver:
    port: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    bad_signatures: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            Webhook(SECRET).verify(raw, dict(request.headers))
        except Exception:
            self.bad_signatures += 1
            return web.Response(status=401)
        self.ids.append(request.headers["webhook-id"])
        self.bodies.append(json.loads(raw))
        return web.Response(status=204)

    def unique(self) -> int:
        return len(set(self.ids))

    async def wait_for(self, unique: int, timeout_s: float = 90) -> None:
        async with asyncio.timeout(timeout_s):
            while self.unique() < unique:
                await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def verifying_receiver() -> AsyncIterator[Receiver]:
    state = Receiver(port=free_port())
    app = web.Application()
    app.router.add_post("/hook", state.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", state.port).start()
    try:
        yield state
    finally:
        await runner.cleanup()


@dataclass
class Process:
    process: asyncio.subprocess.Process
    log: Path

    async def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        return await asyncio.wait_for(self.process.wait(), timeout_s)


async def start(args: list[str], log: Path, command: Sequence[str] = ()) -> Process:
    """`sftriggerd ARGS`, or `COMMAND ARGS` when a test starts it another way."""
    handle = log.open("ab")
    process = await asyncio.create_subprocess_exec(
        *(command or sftriggerd_command()), *args, stdout=handle, stderr=handle
    )
    handle.close()
    return Process(process, log)


async def wait_http(url: str, timeout_s: float = 30) -> None:
    async with aiohttp.ClientSession() as http, asyncio.timeout(timeout_s):
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url) as response:
                    if response.status < 500:
                        return
            await asyncio.sleep(0.1)


class Org:
    """REST calls to the emulator as the default user."""

    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url = url
        self.http = http
        self.token = ""

    async def login(self) -> None:
        async with self.http.post(f"{self.url}/services/oauth2/token", data=LOGIN) as response:
            self.token = (await response.json())["access_token"]

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        url = path if path.startswith("/_emulator") else f"/services/data/v60.0/{path}"
        async with self.http.request(method, self.url + url, json=body, headers=headers) as r:
            assert r.status < 300, await r.text()
            return None if r.status == 204 else await r.json()

    async def create_many(
        self, rows: list[dict[str, Any]], object_name: str = "Account"
    ) -> list[str]:
        ids: list[str] = []
        for chunk in range(0, len(rows), 200):
            records = [
                {"attributes": {"type": object_name}, **row} for row in rows[chunk : chunk + 200]
            ]
            answer = await self.call(
                "POST", "composite/sobjects", {"allOrNone": True, "records": records}
            )
            ids.extend(result["id"] for result in answer)
        return ids


def daemon_config(
    tmp_path: Path,
    emulator_port: int,
    receiver_port: int,
    admin_port: int,
    triggers: str,
    salesforce: str = "",
) -> Path:
    """`salesforce`: more lines of the salesforce section (indented two spaces)."""
    config = tmp_path / "sftriggerd.yaml"
    config.write_text(f"""
salesforce:
  login_url: http://127.0.0.1:{emulator_port}
  auth: {{client_id: emulator-client, client_secret: emulator-secret,
          username: admin@emulator.local, password: emulator}}
{salesforce}
store: {{url: "sqlite:///{tmp_path}/state.db"}}
triggers:
{triggers}
endpoints:
  - {{name: receiver, url: "http://127.0.0.1:{receiver_port}/hook", secret: {SECRET},
      timeout: 5s, max_in_flight: 16, retry: {{schedule: [200ms, 1s], max_age: 10m}}}}
server: {{listen: "127.0.0.1:{admin_port}", shutdown_grace: 5s}}
logging: {{level: info, format: json}}
""")
    return config
