"""The whole daemon under hostile input: `sftriggerd run` as a subprocess, as operators run it,
against the emulator and two real receivers, with several triggers and endpoints.

The emulator runs in the test's own process (so a test reaches its controls and counters
directly and it starts in milliseconds); the daemon talks to it over HTTP like any client.
Every hostile test proves the same three things: the process stays up, the input at hand is
handled as issue 13 requires, and the OTHER triggers and endpoints keep delivering
(`others_still_deliver`). Waits poll for a positive signal and fail at once, with the tail
of the daemon's log, when the daemon exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from standardwebhooks.webhooks import Webhook

from sftriggerd_emulator.context import EmulatorSettings
from tests.acceptance.cli import free_port
from tests.acceptance.harness import SECRET, Process, start, wait_http
from tests.support.emulator import RunningEmulator, start_emulator
from tests.support.sfclient import Answer, OrgClient, control

WAIT_S = 30.0

# accounts and contacts stream CDC; leads are polled. Every endpoint gets every trigger.
TRIGGERS = """
  - {name: accounts, object: Account, mode: streaming, fields: [Name], start_from: latest}
  - {name: contacts, object: Contact, mode: streaming, fields: [LastName],
     start_from: latest}
  - {name: leads, object: Lead, mode: polling, fields: [LastName, Company],
     poll_interval: 200ms, poll_delay: 0s, poll_lookback: 10s, start_from: latest}
"""


@dataclass(frozen=True)
class Delivery:
    webhook_id: str
    body: dict[str, Any]

    @property
    def record_id(self) -> str | None:
        value = self.body.get("record_id")
        return None if value is None else str(value)


@dataclass
class Receiver:
    """A webhook receiver that verifies signatures; it can answer from a script or hang."""

    name: str
    port: int = field(default_factory=free_port)
    deliveries: list[Delivery] = field(default_factory=list)
    requests: int = 0
    bad_signatures: int = 0
    # Answers given before any 204: (status, headers) each, in order.
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    hanging: bool = False
    in_flight: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.requests += 1
        try:
            Webhook(SECRET).verify(raw, dict(request.headers))
        except Exception:
            self.bad_signatures += 1
            return web.Response(status=401)
        if self.hanging:
            self.in_flight += 1
            try:
                await self.release.wait()
            finally:
                self.in_flight -= 1
            return web.Response(status=503)
        if self.script:
            status, headers = self.script.pop(0)
            return web.Response(status=status, headers=headers)
        self.deliveries.append(Delivery(request.headers["webhook-id"], json.loads(raw)))
        return web.Response(status=204)

    def record_ids(self, trigger: str | None = None) -> set[str]:
        return {
            d.record_id
            for d in self.deliveries
            if d.record_id is not None and (trigger is None or d.body.get("trigger") == trigger)
        }

    def of_record(self, record_id: str) -> list[dict[str, Any]]:
        return [d.body for d in self.deliveries if d.record_id == record_id]


@contextlib.asynccontextmanager
async def serving(receiver: Receiver) -> AsyncIterator[Receiver]:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", receiver.port).start()
    try:
        yield receiver
    finally:
        receiver.release.set()  # hung handlers answer, so the runner stops at once
        await runner.cleanup()


@dataclass
class DaemonRig:
    tmp_path: Path
    emulator: RunningEmulator
    http: aiohttp.ClientSession
    org: OrgClient
    alpha: Receiver
    beta: Receiver
    triggers: str = TRIGGERS
    # Settings of each endpoint over the defaults of `_endpoint`, e.g. {"max_in_flight": 150}.
    alpha_options: dict[str, Any] = field(default_factory=dict)
    beta_options: dict[str, Any] = field(default_factory=dict)
    server: str = ""
    # What starts the daemon in place of `sftriggerd` (see unchecked_url_daemon.py).
    command: tuple[str, ...] = ()
    admin_port: int = field(default_factory=free_port)
    process: Process | None = None

    # -- the daemon ------------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        return self.tmp_path / "daemon.log"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def write_config(self) -> Path:
        config = self.tmp_path / "sftriggerd.yaml"
        alpha = json.dumps(_endpoint(self.alpha) | self.alpha_options)
        beta = json.dumps(_endpoint(self.beta) | self.beta_options)
        server = self.server or f'{{listen: "127.0.0.1:{self.admin_port}", shutdown_grace: 2s}}'
        config.write_text(f"""
salesforce:
  login_url: {self.emulator.url}
  auth: {{client_id: emulator-client, client_secret: emulator-secret,
          username: admin@emulator.local, password: emulator}}
store: {{url: "sqlite:///{self.tmp_path}/state.db"}}
triggers:
{self.triggers}
endpoints:
  - {alpha}
  - {beta}
server: {server}
logging: {{level: info, format: json}}
""")
        return config

    async def start(self, *, wait_ready: bool = True) -> None:
        assert self.process is None or self.process.process.returncode is not None
        config = self.write_config()
        self.process = await start(["run", "--config", str(config)], self.log_path, self.command)
        if wait_ready:
            await self.ready()

    async def stop(self, sig: int = signal.SIGTERM) -> int | None:
        """Stops the daemon; its exit status, or None when it was not running."""
        process, self.process = self.process, None
        if process is None:
            return None
        try:
            return await process.stop(sig, timeout_s=20)
        except TimeoutError:
            return await process.stop(signal.SIGKILL)

    async def restart(self) -> None:
        rc = await self.stop()
        assert rc == 0, f"the daemon stopped with {rc}\n{self.log_tail()}"
        await self.start()

    def log_tail(self, lines: int = 15, width: int = 600) -> str:
        if not self.log_path.exists():
            return "(no log)"
        tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(line[:width] for line in tail)

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                parsed = json.loads(line)
                if isinstance(parsed, dict):
                    records.append(parsed)
        return records

    def assert_running(self) -> None:
        process = self.process
        assert process is not None, "the daemon was not started"
        rc = process.process.returncode
        assert rc is None, f"the daemon exited with {rc}\n{self.log_tail()}"

    async def eventually(
        self, check: Callable[[], Awaitable[bool] | bool], what: str, timeout_s: float = WAIT_S
    ) -> None:
        """Waits until `check` holds; fails at once when the daemon exits meanwhile."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            result = check()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            self.assert_running()
            if loop.time() > deadline:
                raise AssertionError(f"timed out after {timeout_s}s: {what}\n{self.log_tail()}")
            await asyncio.sleep(0.1)

    async def ready(self, timeout_s: float = WAIT_S) -> None:
        async def answered_200() -> bool:
            with contextlib.suppress(aiohttp.ClientError):
                async with self.http.get(f"{self.admin_url}/readyz") as response:
                    return response.status == 200
            return False

        await self.eventually(answered_200, "GET /readyz answers 200", timeout_s)

    # -- the admin API and metrics -----------------------------------------------------------

    async def admin(self, method: str, path: str, **kwargs: Any) -> Answer:
        async with self.http.request(method, f"{self.admin_url}{path}", **kwargs) as response:
            text = await response.text()
            body: Any = text
            with contextlib.suppress(ValueError):
                body = json.loads(text)
            return Answer(response.status, body, response.headers)

    async def metric(self, sample: str, **labels: str) -> float:
        """The value of one Prometheus sample (0 when absent), e.g.
        `sftriggerd_poison_events_total` with `trigger="accounts"`."""
        answer = await self.admin("GET", "/metrics")
        assert answer.status == 200, answer.body
        total = 0.0
        for family in text_string_to_metric_families(str(answer.body)):
            for found in family.samples:
                if found.name == sample and all(
                    found.labels.get(k) == v for k, v in labels.items()
                ):
                    total += found.value
        return total

    # -- the emulator ---------------------------------------------------------------------

    async def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = await control(self.http, self.emulator.url, path, body)
        assert answer.status == 200, (path, answer.body)
        return answer.body

    async def stats(self) -> dict[str, Any]:
        body: dict[str, Any] = await self.control("stats")
        return body

    async def relogin(self) -> None:
        """A new session for the test's own REST calls (after `sessions/expire`)."""
        self.org = await OrgClient.login(self.http, self.emulator.url)

    async def create(self, object_name: str, fields: dict[str, Any]) -> str:
        return await self.org.create(object_name, fields)

    # -- deliveries -----------------------------------------------------------------------

    async def delivered(
        self,
        record_ids: set[str] | list[str],
        receivers: tuple[Receiver, ...] | None = None,
        timeout_s: float = WAIT_S,
    ) -> None:
        """Waits until every receiver (both by default) has each record at least once."""
        wanted = set(record_ids)
        targets = receivers or (self.alpha, self.beta)
        try:
            await self.eventually(
                lambda: all(wanted <= receiver.record_ids() for receiver in targets),
                f"{len(wanted)} records delivered to {[r.name for r in targets]}",
                timeout_s,
            )
        except AssertionError as exc:
            missing = {r.name: sorted(wanted - r.record_ids()) for r in targets}
            raise AssertionError(f"missing {missing}\n{exc}") from None

    async def others_still_deliver(
        self,
        receivers: tuple[Receiver, ...] | None = None,
        *,
        accounts: bool = True,
        leads: bool = True,
    ) -> None:
        """A new change of every trigger (accounts and leads optional) reaches the receivers;
        the daemon is the same running process and no part of it ended."""
        created = [await self.create("Contact", {"LastName": "Still here"})]
        if leads:
            created.append(await self.create("Lead", {"LastName": "Still here", "Company": "A"}))
        if accounts:
            created.append(await self.create("Account", {"Name": "Still here"}))
        await self.delivered(created, receivers)
        self.assert_running()
        ended = [r for r in self.log_records() if r.get("event") in ("part_failed", "part_exited")]
        assert not ended, ended


def _endpoint(receiver: Receiver) -> dict[str, Any]:
    return {
        "name": receiver.name,
        "url": receiver.url,
        "secret": SECRET,
        "timeout": "5s",
        "max_in_flight": 16,
        "retry": {"schedule": ["200ms", "1s"], "max_age": "10m"},
    }


@contextlib.asynccontextmanager
async def daemon_rig(
    tmp_path: Path,
    *,
    start_daemon: bool = True,
    emulator_settings: EmulatorSettings | None = None,
    **options: Any,
) -> AsyncIterator[DaemonRig]:
    """The emulator, two receivers and (unless `start_daemon` is false) a ready daemon."""
    settings = emulator_settings or EmulatorSettings(cometd_timeout_ms=3000)
    settings.state_dir = tmp_path / "org"
    emulator, runner = await start_emulator(settings)
    try:
        async with (
            aiohttp.ClientSession() as http,
            serving(Receiver("alpha")) as alpha,
            serving(Receiver("beta")) as beta,
        ):
            await wait_http(f"{emulator.url}/_emulator/stats")
            org = await OrgClient.login(http, emulator.url)
            rig = DaemonRig(tmp_path, emulator, http, org, alpha, beta, **options)
            try:
                if start_daemon:
                    await rig.start()
                yield rig
            finally:
                alpha.release.set()
                beta.release.set()
                await rig.stop()
    finally:
        await runner.cleanup()
