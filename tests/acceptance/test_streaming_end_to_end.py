"""Issues 7's and 16's proof: `sftriggerd run` streams /data/AccountChangeEvent, a platform
event and /data/ContactChangeEvent from the emulator over each transport (CometD, then the
Pub/Sub API) and delivers the expected webhooks through a killed stream, a forced re-login,
a gap notice, a starved channel, a SIGKILL (resumed from the stored position) and a stored
position gone from retention (back-filled by polling). Each body streamed names its transport
in `source.transport`; the test asserts everything else the same way over both. The faults
that differ per transport come from tests/support/transports.py's table."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from sftriggerd_emulator.context import EmulatorSettings
from tests.acceptance.cli import free_port
from tests.acceptance.harness import (
    Org,
    Process,
    Receiver,
    daemon_config,
    start,
    verifying_receiver,
)
from tests.support.emulator import RunningEmulator
from tests.support.transports import FAULTS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

TRIGGERS = """  - {name: accounts, object: Account, mode: streaming, fields: [Name],
      start_from: latest}
  - {name: orders, channel: /event/Order__e, mode: streaming, start_from: latest}
  - {name: contacts, object: Contact, mode: streaming, fields: [LastName],
      start_from: latest, verify_after: 2s}"""


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    return EmulatorSettings(
        state_dir=tmp_path / "org", pubsub_port=0, pubsub_keepalive_s=1.0, cometd_timeout_ms=2000
    )


async def ready(admin_port: int, timeout_s: float = 30) -> None:
    async with aiohttp.ClientSession() as http, asyncio.timeout(timeout_s):
        while True:
            try:
                async with http.get(f"http://127.0.0.1:{admin_port}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


async def eventually(check: Any, timeout_s: float = 60) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.1)


def of(hooks: Receiver, trigger: str) -> list[dict[str, Any]]:
    return [body for body in hooks.bodies if body["trigger"] == trigger]


def records(hooks: Receiver, trigger: str = "accounts") -> set[str]:
    return {body["record_id"] for body in of(hooks, trigger)}


def streamed(hooks: Receiver, ids: list[str]) -> bool:
    """Each of `ids` came in over the stream (not only by a back-fill)."""
    kinds = {(b["record_id"], b["source"]["kind"]) for b in of(hooks, "accounts")}
    return all((record, "streaming") in kinds for record in ids)


async def created(org: Org, prefix: str, count: int, object_name: str = "Account") -> list[str]:
    field = "LastName" if object_name == "Contact" else "Name"
    return [
        (await org.call("POST", f"sobjects/{object_name}", {field: f"{prefix}{i}"}))["id"]
        for i in range(count)
    ]


async def order(org: Org, note: str) -> None:
    await org.call("POST", "/_emulator/events/Order__e", {"payload": {"Note__c": note}})


async def faults(http: aiohttp.ClientSession, admin: int, trigger: str, kind: str) -> float:
    """The daemon's sftriggerd_stream_faults_total for the trigger and kind, from /metrics."""
    async with http.get(f"http://127.0.0.1:{admin}/metrics") as response:
        text = await response.text()
    total = 0.0
    for line in text.splitlines():
        if not line.startswith("sftriggerd_stream_faults_total{"):
            continue
        if f'trigger="{trigger}"' in line and f'kind="{kind}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_changes_stream_to_webhooks_through_every_fault(
    tmp_path: Path, emulator: RunningEmulator, transport: str
) -> None:
    emulator_port, admin = urlsplit(emulator.url).port, free_port()
    assert emulator_port is not None
    salesforce = f"  transport: {transport}\n  pubsub_url: http://{emulator.pubsub_address}"
    log = tmp_path / "daemon.log"
    daemon: Process | None = None
    async with aiohttp.ClientSession() as http, verifying_receiver() as hooks:
        org = Org(emulator.url, http)
        await org.login()
        config = daemon_config(tmp_path, emulator_port, hooks.port, admin, TRIGGERS, salesforce)
        try:
            daemon = await start(["run", "--config", str(config)], log)
            await ready(admin)

            # Creates, updates, deletes, a bulk insert and a platform event, each once.
            ids = await created(org, "A", 6)
            for record in ids[:3]:
                await org.call("PATCH", f"sobjects/Account/{record}", {"Name": "Updated"})
            await org.call("DELETE", f"sobjects/Account/{ids[5]}")
            bulk = await org.create_many([{"Name": "Bulk"} for _ in range(5)])
            await order(org, "first")
            await hooks.wait_for(16)
            await asyncio.sleep(0.5)  # nothing more comes
            kinds = sorted((b["change"], b["record_id"]) for b in of(hooks, "accounts"))
            assert kinds == sorted(
                [("created", r) for r in ids + bulk]
                + [("updated", r) for r in ids[:3]]
                + [("deleted", ids[5])]
            )
            assert [b["record"]["Note__c"] for b in of(hooks, "orders")] == ["first"]
            assert {b["source"]["transport"] for b in hooks.bodies} == {transport}
            assert {b["source"]["kind"] for b in hooks.bodies} == {"streaming"}
            assert len(hooks.ids) == hooks.unique() == 16

            # The server kills the stream: reconnected, nothing lost.
            killed = FAULTS[transport].kill
            await org.call("POST", f"/_emulator/{killed.path}", killed.body)
            after_kill = await created(org, "X", 3)
            await eventually(lambda: set(after_kill) <= records(hooks))
            assert await faults(http, admin, "accounts", "rehandshake") >= 1

            # The session ends: the daemon logs in again, nothing lost.
            await org.call("POST", "/_emulator/sessions/expire", {})
            await org.login()
            after_expiry = await created(org, "S", 3)
            await order(org, "after expiry")
            await eventually(lambda: set(after_expiry) <= records(hooks))
            await eventually(lambda: len(of(hooks, "orders")) == 2)
            assert await faults(http, admin, "accounts", "relogin") >= 1

            # A gap notice: the named record is read again with SOQL.
            gap = {"object": "Account", "record_ids": [ids[0]], "change_type": "GAP_UPDATE"}
            await org.call("POST", "/_emulator/gap", gap)
            await eventually(
                lambda: any(
                    b["source"].get("gap_fill") and b["record_id"] == ids[0]
                    for b in of(hooks, "accounts")
                )
            )
            [reread] = [b for b in of(hooks, "accounts") if b["source"].get("gap_fill")]
            assert (reread["change"], reread["record"]["Name"]) == ("updated", "Updated")

            # A starved channel (keepalives, no events): `verify_after` finds the change.
            starve = {"channel": "/data/ContactChangeEvent", "enabled": True}
            await org.call("POST", "/_emulator/cometd/starve", starve)
            [contact] = await created(org, "C", 1, "Contact")
            await eventually(lambda: contact in records(hooks, "contacts"))
            assert all(b["source"].get("gap_fill") for b in of(hooks, "contacts"))
            assert await faults(http, admin, "contacts", "silence_missed") >= 1
            await org.call("POST", "/_emulator/cometd/starve", {**starve, "enabled": False})

            # SIGKILL: what was made while it was dead streams after the stored position.
            before_kill = await created(org, "K", 2)
            await eventually(lambda: streamed(hooks, before_kill))
            await daemon.stop(signal.SIGKILL)
            while_dead = await created(org, "D", 3)
            await order(org, "while dead")
            daemon = await start(["run", "--config", str(config)], log)
            await eventually(lambda: set(while_dead) <= records(hooks))
            await eventually(lambda: len(of(hooks, "orders")) == 3)
            dead = [b for b in of(hooks, "accounts") if b["record_id"] in set(while_dead)]
            assert {b["source"]["kind"] for b in dead} == {"streaming"}
            assert await daemon.stop() == 0

            # Down long enough for the stored position to leave retention: back-filled.
            missed = await org.create_many([{"Name": f"Missed {i}"} for i in range(3)])
            await org.call("POST", "/_emulator/retention", {"drop_before_replay_id": 10**12})
            daemon = await start(["run", "--config", str(config)], log)
            await eventually(lambda: set(missed) <= records(hooks))
            filled = [b for b in of(hooks, "accounts") if b["record_id"] in set(missed)]
            assert all(b["source"].get("gap_fill") is True for b in filled)
            await ready(admin)
            after_fill = await created(org, "F", 1)
            await eventually(lambda: streamed(hooks, after_fill))

            everything = ids + bulk + after_kill + after_expiry + before_kill + while_dead
            assert records(hooks) == set(everything + missed + after_fill)
            assert [b["record"]["Note__c"] for b in of(hooks, "orders")] == [
                "first",
                "after expiry",
                "while dead",
            ]
            for body in hooks.bodies:
                if body["source"]["kind"] == "streaming":
                    assert body["source"]["transport"] == transport
            assert hooks.bad_signatures == 0
            assert await daemon.stop() == 0
            daemon = None
        finally:
            if daemon is not None:
                await daemon.stop(signal.SIGKILL)
