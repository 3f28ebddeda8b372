"""Runs the demo: an emulated org with changes every second, the daemon on SQLite, and a
receiver printing each delivery with its latency."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web

from sftriggerd.config import Settings, parse_settings
from sftriggerd.daemon import run_daemon
from sftriggerd.salesforce.soql import parse_datetime

from ..context import EmulatorSettings
from ..server import build_app
from .receiver import Received, receiver_app

_NAMES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell")


# A close date for the demo's opportunities.
_SOON = "2027-01-31"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(app: web.Application, port: int) -> AsyncIterator[None]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield
    finally:
        await runner.cleanup()


def demo_settings(
    state: Path,
    emulator_port: int,
    receiver_port: int,
    admin_port: int,
    secret: str,
    pubsub_port: int,
) -> Settings:
    # One trigger per way of reading an org: Pub/Sub (what new integrations should choose for
    # CDC and platform events), CometD (the Streaming API: PushTopics and generic channels,
    # or when only HTTPS to the instance is allowed) and polling (any object, no streaming).
    return parse_settings(
        f"""
salesforce:
  login_url: http://127.0.0.1:{emulator_port}
  auth: {{client_id: emulator-client, client_secret: emulator-secret,
          username: admin@emulator.local, password: emulator}}
  transport: pubsub
  pubsub_url: http://127.0.0.1:{pubsub_port}
store: {{url: "sqlite:///{state}/state.db"}}
triggers:
  - {{name: accounts, object: Account, fields: [Name, Industry], mode: auto}}
  - {{name: opportunities, object: Opportunity, fields: [Name, StageName], mode: streaming,
      transport: cometd}}
  - {{name: contacts, object: Contact, fields: [LastName], mode: polling, poll_interval: 1s,
      poll_delay: 0s, start_from: latest}}
endpoints:
  - {{name: demo-receiver, url: "http://127.0.0.1:{receiver_port}/webhook", secret: {secret},
      timeout: 5s, retry: {{schedule: [1s, 5s], max_age: 5m}}}}
server: {{listen: "127.0.0.1:{admin_port}", shutdown_grace: 3s}}
logging: {{level: warning, format: console}}
""",
        source="demo",
        environ={},
    )


def print_delivery(received: Received) -> None:
    body = received.body
    occurred = parse_datetime(body["occurred_at"]).timestamp()
    latency_s = received.received_at - occurred
    name = body["record"].get("Name") or body["record"].get("LastName") or ""
    if body["change"] == "updated" and body["changed_fields"]:
        shown = [f for f in body["changed_fields"] if f not in ("LastModifiedDate",)]
        name = "changed " + ",".join(shown)
    source = body["source"]
    via = source.get("transport") or source["kind"]  # pubsub, cometd or polling
    print(
        f"  {body['type']:<20} {body['record_id'] or '-':<19} {name:<18} via {via:<7}"
        f" latency {latency_s:6.3f}s  signature ok",
        flush=True,
    )


async def wait_ready(http: aiohttp.ClientSession, admin_url: str, stopping: asyncio.Event) -> None:
    while not stopping.is_set():
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"{admin_url}/readyz") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.2)


async def make_changes(emulator_url: str, admin_url: str, stopping: asyncio.Event) -> None:
    """Creates or updates a record every second, as users of an org would."""
    async with aiohttp.ClientSession() as http:
        await wait_ready(http, admin_url, stopping)
        form = {
            "grant_type": "password",
            "client_id": "emulator-client",
            "client_secret": "emulator-secret",
            "username": "admin@emulator.local",
            "password": "emulator",
        }
        async with http.post(f"{emulator_url}/services/oauth2/token", data=form) as response:
            token = (await response.json())["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        base = f"{emulator_url}/services/data/v60.0/sobjects"
        created: list[str] = []
        tick = 0
        while not stopping.is_set():
            tick += 1
            if tick % 3 == 0 and created:
                record = created[tick % len(created)]
                await http.patch(
                    f"{base}/Account/{record}",
                    headers=headers,
                    json={"Industry": "Energy" if tick % 2 else "Retail"},
                )
            elif tick % 5 == 0:
                await http.post(
                    f"{base}/Contact", headers=headers, json={"LastName": f"Person {tick}"}
                )
            elif tick % 4 == 0:
                deal = {"Name": f"Deal {tick}", "StageName": "Prospecting", "CloseDate": _SOON}
                await http.post(f"{base}/Opportunity", headers=headers, json=deal)
            else:
                async with http.post(
                    f"{base}/Account",
                    headers=headers,
                    json={"Name": f"{_NAMES[tick % len(_NAMES)]} {tick}"},
                ) as r:
                    created.append((await r.json())["id"])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 1.0)


async def run_demo(stopping: asyncio.Event) -> None:
    """The demo in a temporary folder of its own, removed when it stops (a demo leaves
    nothing behind)."""
    state = Path(tempfile.mkdtemp(prefix="sftriggerd-demo-"))
    try:
        await _demo_in(state, stopping)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    print("demo stopped", flush=True)


async def _demo_in(state: Path, stopping: asyncio.Event) -> None:
    emulator_port, receiver_port, admin_port = free_port(), free_port(), free_port()
    pubsub_port = free_port()
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    settings = demo_settings(state, emulator_port, receiver_port, admin_port, secret, pubsub_port)
    emulator_app, _ = build_app(
        EmulatorSettings(port=emulator_port, state_dir=state / "org", pubsub_port=pubsub_port)
    )
    key = settings.endpoints[0].secret_key
    async with (
        serving(emulator_app, emulator_port),
        serving(receiver_app(key, print_delivery), receiver_port),
    ):
        print(
            f"""sftriggerd demo (pid {os.getpid()})
  emulator  http://127.0.0.1:{emulator_port}   (login admin@emulator.local / emulator)
  receiver  http://127.0.0.1:{receiver_port}/webhook   (verifies Standard Webhooks signatures)
  admin     http://127.0.0.1:{admin_port}/   (/readyz /metrics /api/triggers /api/deliveries)
  store     {state}/state.db
  triggers  accounts over the Pub/Sub API (gRPC on 127.0.0.1:{pubsub_port}; the transport
            Salesforce points new integrations at), opportunities over the Streaming API
            (CometD; for PushTopics and generic channels, or HTTPS-only networks),
            contacts by polling (any object)
Creating and updating records every second; each delivery prints below. Ctrl-C stops.
""",
            flush=True,
        )
        async with asyncio.TaskGroup() as group:
            group.create_task(
                make_changes(
                    f"http://127.0.0.1:{emulator_port}", f"http://127.0.0.1:{admin_port}", stopping
                )
            )
            group.create_task(run_daemon(settings, stopping))
