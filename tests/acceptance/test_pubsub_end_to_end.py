"""What only the Pub/Sub API brings to `sftriggerd run` (`salesforce.transport: pubsub`):
a CDC and a platform-event trigger over it next to CometD triggers on the same channels in
the same run deliver the same bodies (but for `source.transport` and `replay_id`); a quiet
spell holds keepalives; a trigger switched from CometD to Pub/Sub on restart resumes by
time; `where`, `enrich`, `ignore_users` and `mode: auto` over it. The faults every transport
must survive run over both in test_streaming_end_to_end.py."""

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
from tests.acceptance.test_streaming_end_to_end import ready
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ACCOUNTS = """  - {name: accounts, object: Account, mode: streaming, fields: [Name],
      start_from: latest}"""
ACCOUNTS_COMETD = """  - {name: accounts_cometd, object: Account, mode: streaming, fields: [Name],
      start_from: latest, transport: cometd}"""
ORDERS = "  - {name: orders, channel: /event/Order__e, mode: streaming, start_from: latest}"
ORDERS_COMETD = """  - {name: orders_cometd, channel: /event/Order__e, mode: streaming,
      start_from: latest, transport: cometd}"""


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    # Keepalives every second, so a quiet spell of a few seconds holds several.
    return EmulatorSettings(
        state_dir=tmp_path / "org", pubsub_port=0, pubsub_keepalive_s=1.0, cometd_timeout_ms=2000
    )


def pubsub_settings(emulator: RunningEmulator) -> str:
    return f"  transport: pubsub\n  pubsub_url: http://{emulator.pubsub_address}"


def config_for(
    tmp_path: Path, emulator: RunningEmulator, hooks: Receiver, admin: int, *t: str
) -> Path:
    port = urlsplit(emulator.url).port
    assert port is not None
    return daemon_config(tmp_path, port, hooks.port, admin, "\n".join(t), pubsub_settings(emulator))


def of(hooks: Receiver, trigger: str) -> list[dict[str, Any]]:
    return [body for body in hooks.bodies if body["trigger"] == trigger]


def records(hooks: Receiver, trigger: str) -> set[str]:
    return {body["record_id"] for body in of(hooks, trigger)}


def transport_neutral(body: dict[str, Any]) -> dict[str, Any]:
    """A body without what names its trigger and transport: the transport, and the replay id
    and schema id (each API names events and schemas its own way)."""
    source = {k: v for k, v in body["source"].items() if k not in ("transport", "replay_id")}
    event = {k: v for k, v in body["raw"]["data"]["event"].items() if k != "replayId"}
    payload = body["raw"]["data"]["payload"]
    if "ChangeEventHeader" in payload:  # field lists in one order (see changed_fields below)
        header = payload["ChangeEventHeader"]
        header = {k: sorted(v) if k.endswith("Fields") else v for k, v in header.items()}
        payload = {**payload, "ChangeEventHeader": header}
    data = {**body["raw"]["data"], "schema": None, "event": event, "payload": payload}
    raw = {**body["raw"], "data": data}
    # Pub/Sub's bitmaps name changed fields in schema order, CometD in its own: the same set.
    changed = sorted(body["changed_fields"])
    return {**body, "trigger": None, "source": source, "raw": raw, "changed_fields": changed}


async def eventually(check: Any, timeout_s: float = 60) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.1)


async def created(org: Org, prefix: str, count: int) -> list[str]:
    return [
        (await org.call("POST", "sobjects/Account", {"Name": f"{prefix}{i}"}))["id"]
        for i in range(count)
    ]


async def order(org: Org, note: str) -> None:
    await org.call("POST", "/_emulator/events/Order__e", {"payload": {"Note__c": note}})


async def emulator_stats(org: Org) -> dict[str, Any]:
    stats: dict[str, Any] = await org.call("GET", "/_emulator/stats")
    return stats


async def test_pubsub_triggers_deliver_the_cometd_triggers_bodies(
    tmp_path: Path, emulator: RunningEmulator
) -> None:
    admin = free_port()
    daemon: Process | None = None
    async with aiohttp.ClientSession() as http, verifying_receiver() as hooks:
        org = Org(emulator.url, http)
        await org.login()
        triggers = (ACCOUNTS, ACCOUNTS_COMETD, ORDERS, ORDERS_COMETD)
        config = config_for(tmp_path, emulator, hooks, admin, *triggers)
        log = tmp_path / "daemon.log"
        try:
            daemon = await start(["run", "--config", str(config)], log)
            await ready(admin)
            async with http.get(f"http://127.0.0.1:{admin}/api/triggers") as response:
                shown = {t["name"]: t["transport"] for t in await response.json()}
            assert shown == {
                "accounts": "pubsub",
                "accounts_cometd": "cometd",
                "orders": "pubsub",
                "orders_cometd": "cometd",
            }
            async with http.get(f"http://127.0.0.1:{admin}/") as response:
                page = await response.text()
            assert "streaming over pubsub" in page and "streaming over cometd" in page

            # The same changes over both transports: the same bodies.
            ids = await created(org, "A", 5)
            for record in ids[:2]:
                await org.call("PATCH", f"sobjects/Account/{record}", {"Name": "Updated"})
            await order(org, "first")
            await eventually(lambda: len(of(hooks, "accounts_cometd")) >= 7)
            await eventually(lambda: len(of(hooks, "accounts")) >= 7 and of(hooks, "orders"))
            pubsub = sorted(map(transport_neutral, of(hooks, "accounts")), key=repr)
            cometd = sorted(map(transport_neutral, of(hooks, "accounts_cometd")), key=repr)
            assert pubsub == cometd
            assert {b["source"]["transport"] for b in of(hooks, "accounts")} == {"pubsub"}
            await eventually(lambda: len(of(hooks, "orders_cometd")) == 1)
            [first_order] = of(hooks, "orders")
            assert first_order["source"]["transport"] == "pubsub"
            [over_cometd] = of(hooks, "orders_cometd")
            assert transport_neutral(first_order) == transport_neutral(over_cometd)
            assert first_order["record"]["Note__c"] == "first"

            # A quiet spell with keepalives, then one more change.
            kept = (await emulator_stats(org)).get("pubsub_keepalives", 0)
            await asyncio.sleep(3)
            assert (await emulator_stats(org))["pubsub_keepalives"] > kept
            [late] = await created(org, "Q", 1)
            await eventually(lambda: late in records(hooks, "accounts"))

            assert set(ids) | {late} == records(hooks, "accounts")
            await eventually(lambda: late in records(hooks, "accounts_cometd"))
            assert records(hooks, "accounts") == records(hooks, "accounts_cometd")
            assert hooks.bad_signatures == 0
            assert await daemon.stop() == 0
            daemon = None
        finally:
            if daemon is not None:
                await daemon.stop(signal.SIGKILL)


async def test_a_trigger_switched_to_pubsub_resumes_by_time(
    tmp_path: Path, emulator: RunningEmulator
) -> None:
    admin = free_port()
    daemon: Process | None = None
    async with aiohttp.ClientSession() as http, verifying_receiver() as hooks:
        org = Org(emulator.url, http)
        await org.login()
        config = config_for(tmp_path, emulator, hooks, admin, ACCOUNTS, ACCOUNTS_COMETD)
        log = tmp_path / "daemon.log"
        try:
            daemon = await start(["run", "--config", str(config)], log)
            await ready(admin)
            streamed = await created(org, "A", 3)
            await eventually(lambda: set(streamed) <= records(hooks, "accounts"))
            await eventually(lambda: set(streamed) <= records(hooks, "accounts_cometd"))
            assert await daemon.stop() == 0

            # The CometD trigger switched to Pub/Sub: its stored CometD position means nothing
            # there, so it resumes from the time it had reached, by polling.
            switched = config_for(
                tmp_path,
                emulator,
                hooks,
                admin,
                ACCOUNTS,
                ACCOUNTS_COMETD.replace("cometd}", "pubsub}"),
            )
            missed_switch = await created(org, "W", 3)
            daemon = await start(["run", "--config", str(switched)], log)
            await ready(admin)
            async with http.get(f"http://127.0.0.1:{admin}/api/triggers") as response:
                shown = {t["name"]: t["transport"] for t in await response.json()}
            assert shown == {"accounts": "pubsub", "accounts_cometd": "pubsub"}
            await eventually(lambda: set(missed_switch) <= records(hooks, "accounts_cometd"))
            streamed_after = await created(org, "P", 2)
            await eventually(lambda: set(streamed_after) <= records(hooks, "accounts_cometd"))
            newest = [b for b in of(hooks, "accounts_cometd") if b["record_id"] in streamed_after]
            assert {b["source"]["transport"] for b in newest} == {"pubsub"}
            every = set(streamed) | set(missed_switch)
            assert every | set(streamed_after) == records(hooks, "accounts_cometd")
            assert hooks.bad_signatures == 0
            assert await daemon.stop() == 0
            daemon = None
        finally:
            if daemon is not None:
                await daemon.stop(signal.SIGKILL)


FILTERED = """  - {name: filtered, object: Account, mode: streaming, fields: [Name, Industry],
      start_from: latest, where: "Industry = 'Keep'", enrich: true, ignore_users: [OTHER]}"""
CONTACTS = """  - {name: contacts, object: Contact, mode: streaming, fields: [LastName],
      start_from: latest, where: "LastName = 'Keep'"}"""
LEADS_AUTO = """  - {name: leads, object: Lead, mode: auto, fields: [LastName, Company],
      poll_interval: 1s}"""


async def test_where_enrich_ignore_and_auto_work_over_pubsub(
    tmp_path: Path, emulator: RunningEmulator
) -> None:
    admin = free_port()
    daemon: Process | None = None
    async with aiohttp.ClientSession() as http, verifying_receiver() as hooks:
        org = Org(emulator.url, http)
        await org.login()
        other_user = {"username": "other@example.com", "password": "pw"}
        other_id = (await org.call("POST", "/_emulator/users", other_user))["user_id"]
        other = await OrgClient.login(http, emulator.url, **other_user)
        # The Lead change topic cannot be subscribed: `mode: auto` polls it instead.
        unavailable = {
            "status": "NOT_FOUND",
            "error_code": "sfdc.platform.eventbus.grpc.topic.not.found",
            "count": -1,
            "match": "GetTopic /data/LeadChangeEvent",
        }
        await org.call("POST", "/_emulator/pubsub/fail", unavailable)
        triggers = (FILTERED.replace("OTHER", other_id), CONTACTS, LEADS_AUTO)
        config = config_for(tmp_path, emulator, hooks, admin, *triggers)
        try:
            daemon = await start(["run", "--config", str(config)], tmp_path / "daemon.log")
            await ready(admin)
            async with http.get(f"http://127.0.0.1:{admin}/api/triggers") as response:
                shown = {t["name"]: t for t in await response.json()}
            assert shown["leads"]["mode"] == "polling" and shown["leads"]["transport"] == "pubsub"
            assert "unavailable" in shown["leads"]["mode_reason"]

            # `where`, `enrich` and `ignore_users` on streamed Pub/Sub changes.
            kept = await org.call("POST", "sobjects/Account", {"Name": "K", "Industry": "Keep"})
            await org.call("POST", "sobjects/Account", {"Name": "D", "Industry": "Drop"})
            await org.call("PATCH", f"sobjects/Account/{kept['id']}", {"Name": "K2"})
            await other.create("Account", {"Name": "O", "Industry": "Keep"})  # ignored
            last = await org.call("POST", "sobjects/Account", {"Name": "L", "Industry": "Keep"})
            await eventually(lambda: last["id"] in records(hooks, "filtered"))
            filtered = [(b["change"], b["record_id"]) for b in of(hooks, "filtered")]
            assert filtered == [
                ("created", kept["id"]),
                ("updated", kept["id"]),
                ("created", last["id"]),
            ]
            [updated] = [b for b in of(hooks, "filtered") if b["change"] == "updated"]
            assert updated["changed_fields"] == ["LastModifiedDate", "Name"]
            assert updated["record"]["Industry"] == "Keep"  # not in the change: enriched

            # A condition on a part of a compound field (a change event nests LastName in Name).
            await org.call("POST", "sobjects/Contact", {"LastName": "Drop"})
            contact = await org.call("POST", "sobjects/Contact", {"LastName": "Keep"})
            await eventually(lambda: contact["id"] in records(hooks, "contacts"))
            assert records(hooks, "contacts") == {contact["id"]}

            # Auto mode polls the Lead object meanwhile.
            lead = await org.call("POST", "sobjects/Lead", {"LastName": "L", "Company": "C"})
            await eventually(lambda: lead["id"] in records(hooks, "leads"))
            assert {b["source"]["kind"] for b in of(hooks, "leads")} == {"polling"}
            assert hooks.bad_signatures == 0
            assert await daemon.stop() == 0
            daemon = None
        finally:
            if daemon is not None:
                await daemon.stop(signal.SIGKILL)
