"""A restarted emulator on the same state directory still has its org, like a real one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from sftriggerd_emulator.context import EmulatorSettings
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient

Starter = Callable[[EmulatorSettings], Awaitable[tuple[RunningEmulator, web.AppRunner]]]


async def test_records_survive_a_restart(
    tmp_path: Path, http: aiohttp.ClientSession, emulator_starter: Starter
) -> None:
    state_dir = tmp_path / "org"
    first, runner = await emulator_starter(EmulatorSettings(state_dir=state_dir))
    org = await OrgClient.login(http, first.url)
    account_ids = await org.create_many("Account", [{"Name": "a"}, {"Name": "b"}])
    widget_id = await org.create("Widget__c", {"Size__c": 3, "Shipped__c": "2024-01-01T00:00:00Z"})
    await org.call("DELETE", f"sobjects/Account/{account_ids[1]}")
    before = (await org.get("Widget__c", widget_id)).body
    await runner.cleanup()

    second, _ = await emulator_starter(EmulatorSettings(state_dir=state_dir))
    stale = await OrgClient(http, second.url, org.token).call("GET", "limits")
    assert stale.status == 401  # sessions are not kept; clients log in again
    org = await OrgClient.login(http, second.url)
    assert (await org.get("Widget__c", widget_id)).body == before
    live = await org.query("SELECT Id FROM Account")
    assert [row["Id"] for row in live.body["records"]] == account_ids[:1]
    everything = await org.query("SELECT Id, IsDeleted FROM Account", include_deleted=True)
    assert [(r["Id"], r["IsDeleted"]) for r in everything.body["records"]] == [
        (account_ids[0], False),
        (account_ids[1], True),
    ]
    types = {
        field["name"]: field["type"]
        for field in (await org.call("GET", "sobjects/Widget__c/describe")).body["fields"]
    }
    assert (types["Size__c"], types["Shipped__c"]) == ("double", "datetime")

    next_account = await org.create("Account", {"Name": "c"})
    assert next_account > account_ids[1]
    next_widget = await org.create("Widget__c", {"Size__c": 4})
    assert next_widget > widget_id
    assert next_widget.startswith("a00")
    assert (await org.create("Gizmo__c", {"Name": "g"})).startswith("a01")


async def test_a_restart_keeps_undeleting_possible(
    tmp_path: Path, http: aiohttp.ClientSession, emulator_starter: Starter
) -> None:
    state_dir = tmp_path / "org"
    first, runner = await emulator_starter(EmulatorSettings(state_dir=state_dir))
    org = await OrgClient.login(http, first.url)
    record_id = await org.create("Account", {"Name": "binned"})
    await org.call("DELETE", f"sobjects/Account/{record_id}")
    await runner.cleanup()

    second, _ = await emulator_starter(EmulatorSettings(state_dir=state_dir))
    async with http.post(f"{second.url}/_emulator/undelete/Account/{record_id}") as response:
        assert response.status == 200
    org = await OrgClient.login(http, second.url)
    assert (await org.get("Account", record_id)).body["Name"] == "binned"


async def test_without_a_state_dir_nothing_is_written(
    tmp_path: Path, http: aiohttp.ClientSession, emulator_starter: Starter
) -> None:
    running, _ = await emulator_starter(EmulatorSettings(state_dir=None))
    org = await OrgClient.login(http, running.url)
    await org.create("Account", {"Name": "memory only"})
    assert list(tmp_path.iterdir()) == []
