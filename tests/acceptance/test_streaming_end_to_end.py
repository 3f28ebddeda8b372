"""Issue 7's proof: `sftriggerd run` streams /data/AccountChangeEvent from the emulator and
delivers exactly the expected webhooks, across a SIGKILL and an expired replay id."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import pytest

from tests.acceptance.cli import free_port
from tests.acceptance.harness import (
    Org,
    Process,
    daemon_config,
    start,
    verifying_receiver,
    wait_http,
)

TRIGGERS = """  - {name: accounts, object: Account, mode: streaming, fields: [Name],
      start_from: latest}"""


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


@pytest.mark.slow
async def test_changes_stream_to_webhooks_across_kill_and_expired_replay(tmp_path: Path) -> None:
    emulator_port, admin_port = free_port(), free_port()
    emulator = await start(
        ["emulator", "--port", str(emulator_port), "--state", str(tmp_path / "org")],
        tmp_path / "emulator.log",
    )
    daemon: Process | None = None
    try:
        await wait_http(f"http://127.0.0.1:{emulator_port}/_emulator/stats")
        async with aiohttp.ClientSession() as http, verifying_receiver() as hooks:
            org = Org(f"http://127.0.0.1:{emulator_port}", http)
            await org.login()
            config = daemon_config(tmp_path, emulator_port, hooks.port, admin_port, TRIGGERS)
            daemon = await start(["run", "--config", str(config)], tmp_path / "daemon.log")
            await ready(admin_port)

            created = [
                await org.call("POST", "sobjects/Account", {"Name": f"A{i}"}) for i in range(100)
            ]
            ids = [c["id"] for c in created]
            for record in ids[:50]:
                await org.call("PATCH", f"sobjects/Account/{record}", {"Name": "Updated"})
            for record in ids[50:60]:
                await org.call("DELETE", f"sobjects/Account/{record}")
            bulk = await org.create_many([{"Name": "Bulk"} for _ in range(25)])
            await hooks.wait_for(185)
            await asyncio.sleep(1)
            kinds = sorted((b["change"], b["record_id"]) for b in hooks.bodies)
            expected = sorted(
                [("created", r) for r in ids + bulk]
                + [("updated", r) for r in ids[:50]]
                + [("deleted", r) for r in ids[50:60]]
            )
            assert kinds == expected
            assert len(hooks.ids) == hooks.unique() == 185
            assert hooks.bad_signatures == 0

            # SIGKILL mid-stream: changes keep coming while it is dead; nothing is lost.
            more = [
                await org.call("POST", "sobjects/Account", {"Name": f"K{i}"}) for i in range(10)
            ]
            await daemon.stop(signal.SIGKILL)
            more += [
                await org.call("POST", "sobjects/Account", {"Name": f"D{i}"}) for i in range(10)
            ]
            daemon = await start(["run", "--config", str(config)], tmp_path / "daemon.log")
            await hooks.wait_for(205)
            assert {m["id"] for m in more} <= {b["record_id"] for b in hooks.bodies}
            assert await daemon.stop() == 0

            # Down long enough for the replay id to leave retention: back-filled by polling.
            missed = await org.create_many([{"Name": f"Missed {i}"} for i in range(5)])
            await org.call("POST", "/_emulator/retention", {"drop_before_replay_id": 10**12})
            daemon = await start(["run", "--config", str(config)], tmp_path / "daemon.log")
            await hooks.wait_for(210)
            filled = [b for b in hooks.bodies if b["record_id"] in set(missed)]
            assert {b["record_id"] for b in filled} == set(missed)
            assert all(b["source"].get("gap_fill") is True for b in filled)
            assert await daemon.stop() == 0
            daemon = None
    finally:
        if daemon is not None:
            await daemon.stop(signal.SIGKILL)
        await emulator.stop()
