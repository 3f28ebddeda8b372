"""`sftriggerd run` as a subprocess against the emulator: its status page draws one lag
chart per trigger, from the lag the daemon itself measured (its lag gauge's samples)."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

import aiohttp
import pytest

from tests.acceptance.cli import free_port
from tests.acceptance.harness import (
    Process,
    daemon_config,
    start,
    verifying_receiver,
    wait_http,
)
from tests.acceptance.test_streaming_end_to_end import ready

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

TRIGGERS = """  - {name: accounts, object: Account, mode: polling, fields: [Name],
      poll_interval: 1s, poll_delay: 0s, start_from: latest}
  - {name: contacts, object: Contact, mode: streaming, fields: [Name], start_from: latest}"""
LAG_LABEL = re.compile(
    r'<figure data-lag-chart="(\w+)">.*?<svg [^>]*role="img" aria-label="\1: lag at most'
    r' [^"]+, latest [^"]+, in the last 60 minutes"[^>]*>.*?class="bar-lag".*?</figure>',
    re.S,
)


async def lag_charts(http: aiohttp.ClientSession, admin_port: int) -> set[str]:
    """The triggers the page charts a sampled lag for."""
    async with http.get(f"http://127.0.0.1:{admin_port}/") as response:
        assert response.status == 200
        page = await response.text()
    triggers = page.split('<section id="triggers">')[1].split("</section>")[0]
    return set(LAG_LABEL.findall(triggers))


async def test_a_running_daemon_charts_each_triggers_lag(tmp_path: Path) -> None:
    emulator_port, admin_port = free_port(), free_port()
    emulator = await start(
        ["emulator", "--port", str(emulator_port), "--state", str(tmp_path / "org")],
        tmp_path / "emulator.log",
    )
    daemon: Process | None = None
    try:
        await wait_http(f"http://127.0.0.1:{emulator_port}/_emulator/stats")
        async with aiohttp.ClientSession() as http, verifying_receiver() as hooks:
            config = daemon_config(tmp_path, emulator_port, hooks.port, admin_port, TRIGGERS)
            daemon = await start(["run", "--config", str(config)], tmp_path / "daemon.log")
            await ready(admin_port)
            # The status reporter samples every 5 s, as it sets the lag gauge.
            async with asyncio.timeout(30):
                while (charted := await lag_charts(http, admin_port)) != {"accounts", "contacts"}:
                    await asyncio.sleep(0.5)
            assert charted == {"accounts", "contacts"}
            async with http.get(f"http://127.0.0.1:{admin_port}/") as response:
                page = await response.text()
            assert re.search(r"since \d\d:\d\d UTC, when this process started", page)
            assert await daemon.stop() == 0
            daemon = None
    finally:
        if daemon is not None:
            await daemon.stop(signal.SIGKILL)
        await emulator.stop()
