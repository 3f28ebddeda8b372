"""Issue 6's proof: `sftriggerd run` as a subprocess polls the emulator and delivers every
change exactly once, across ties, a stop and changes made while it was down."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta
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

TRIGGERS = """  - {name: accounts, object: Account, mode: polling, fields: [Name],
      poll_interval: 1s, poll_delay: 0s, start_from: earliest}"""


@pytest.mark.slow
async def test_300_records_then_a_restart_with_changes_while_down(tmp_path: Path) -> None:
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
            tie = (datetime.now(UTC) - timedelta(seconds=20)).replace(microsecond=0)
            await org.call("POST", "/_emulator/modstamp", {"freeze_at": tie.isoformat()})
            tied = await org.create_many([{"Name": f"Tied {i}"} for i in range(120)])
            await org.call("POST", "/_emulator/modstamp", {"freeze_at": None})
            rest = await org.create_many([{"Name": f"Other {i}"} for i in range(180)])
            config = daemon_config(tmp_path, emulator_port, hooks.port, admin_port, TRIGGERS)

            daemon = await start(["run", "--config", str(config)], tmp_path / "daemon.log")
            await hooks.wait_for(300)
            assert await daemon.stop() == 0
            assert len(hooks.ids) == hooks.unique() == 300, "duplicates delivered"
            assert {b["record_id"] for b in hooks.bodies} == set(tied + rest)
            assert {b["change"] for b in hooks.bodies} == {"created"}
            assert hooks.bad_signatures == 0

            # SystemModstamp has whole seconds: an update within the second of the version
            # already delivered keeps the same (Id, SystemModstamp) and is invisible to any
            # poller (README, "Polling"). Real changes while down come later than that.
            await asyncio.sleep(1.1)
            for record in rest[:50]:
                await org.call("PATCH", f"sobjects/Account/{record}", {"Name": "Renamed"})
            added = await org.create_many([{"Name": f"Late {i}"} for i in range(20)])

            daemon = await start(["run", "--config", str(config)], tmp_path / "daemon.log")
            await wait_http(f"http://127.0.0.1:{admin_port}/healthz")
            await hooks.wait_for(370)
            assert await daemon.stop() == 0
            later = hooks.bodies[300:]
            assert len(hooks.ids) == hooks.unique() == 370, "duplicates delivered"
            assert sorted(b["record_id"] for b in later if b["change"] == "updated") == sorted(
                rest[:50]
            )
            assert sorted(b["record_id"] for b in later if b["change"] == "created") == sorted(
                added
            )
            daemon = None
    finally:
        if daemon is not None:  # a failed check must not leave the daemon running
            await daemon.stop(signal.SIGKILL)
        await emulator.stop()
