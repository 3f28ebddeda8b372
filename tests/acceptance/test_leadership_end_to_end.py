"""`sftriggerd run` on SQLite under leadership: its one replica, `local`, leads every
trigger; a process started after a crash takes the leases over at once (with the next
epoch) instead of waiting for them to run out; SIGTERM releases them."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sftriggerd.store.sqlite import SqliteStore
from tests.acceptance.cli import free_port
from tests.acceptance.harness import Org, daemon_config, start, verifying_receiver, wait_http

TRIGGERS = """  - {name: accounts, object: Account, mode: polling, fields: [Name],
      poll_interval: 1s, poll_delay: 0s, start_from: earliest}"""
# Leases that would run for 40 minutes after a crash: only the same replica name lets the
# next process lead at once.
HA = "ha: {takeover: 1h}\n"


async def get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as response:
        assert response.status == 200
        return await response.json()


async def stored_leases(path: Path) -> tuple[list[tuple[str, str, int, bool]], list[str]]:
    store = SqliteStore(path)
    await store.open(create=False)
    try:
        leases = [(x.trigger, x.holder, x.epoch, x.live) for x in await store.leases()]
        return leases, [replica.name for replica in await store.replicas()]
    finally:
        await store.close()


@pytest.mark.slow
async def test_one_local_replica_leads_and_takes_over_at_once_after_a_crash(
    tmp_path: Path,
) -> None:
    emulator_port, admin_port = free_port(), free_port()
    emulator = await start(
        ["emulator", "--port", str(emulator_port), "--state", str(tmp_path / "org")],
        tmp_path / "emulator.log",
    )
    admin = f"http://127.0.0.1:{admin_port}"
    try:
        await wait_http(f"http://127.0.0.1:{emulator_port}/_emulator/stats")
        async with aiohttp.ClientSession() as http, verifying_receiver() as hooks:
            org = Org(f"http://127.0.0.1:{emulator_port}", http)
            await org.login()
            config = daemon_config(tmp_path, emulator_port, hooks.port, admin_port, TRIGGERS)
            config.write_text(config.read_text() + HA)
            await org.create_many([{"Name": f"Before {i}"} for i in range(5)])
            daemon = await start(["run", "--config", str(config)], tmp_path / "daemon.log")
            await hooks.wait_for(5)
            [replica] = await get(http, admin + "/api/replicas")
            assert (replica["name"], replica["this"], replica["triggers"]) == (
                "local",
                True,
                ["accounts"],
            )
            [trigger] = await get(http, admin + "/api/triggers")
            assert (trigger["leader"], trigger["state"]) == ("local", "running")

            assert await daemon.stop(signal.SIGKILL) == -signal.SIGKILL
            await org.create_many([{"Name": f"While down {i}"} for i in range(5)])
            daemon = await start(["run", "--config", str(config)], tmp_path / "daemon.log")
            await hooks.wait_for(10)
            assert (await get(http, admin + "/api/replicas"))[0]["triggers"] == ["accounts"]
            leases, _ = await stored_leases(tmp_path / "state.db")
            assert leases == [("accounts", "local", 2, True)]

            assert await daemon.stop() == 0
            assert hooks.unique() == 10  # at least once: a send cut by the kill may repeat
        leases, replicas = await stored_leases(tmp_path / "state.db")
        assert leases == [("accounts", "local", 2, False)]  # released on the way out
        assert replicas == []
    finally:
        await emulator.stop()
