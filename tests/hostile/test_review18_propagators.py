"""OTEL_PROPAGATORS is set cluster-wide as often as the exporter variables (b3 for a Zipkin
mesh, xray on AWS). The tracing docs promise that a tracing request the build cannot meet
is reported and the daemon delivers without traces; a propagator this install does not
have must be one of those, not a daemon that never starts."""

from __future__ import annotations

import contextlib
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.acceptance.cli import free_port
from tests.acceptance.harness import Org, daemon_config, start, verifying_receiver, wait_http
from tests.support.emulator import RunningEmulator

TRIGGER = "  - {name: accounts, object: Account, mode: streaming, start_from: earliest}"


async def test_a_propagator_not_installed_leaves_the_daemon_delivering(
    tmp_path: Path, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_PROPAGATORS", "tracecontext,b3")  # b3 is not installed here
    emulator_port, admin = urlsplit(emulator.url).port, free_port()
    assert emulator_port is not None
    async with verifying_receiver() as hooks:
        config = daemon_config(tmp_path, emulator_port, hooks.port, admin, TRIGGER)
        daemon = await start(["run", "--config", str(config)], tmp_path / "daemon.log")
        try:
            with contextlib.suppress(TimeoutError):
                await wait_http(f"http://127.0.0.1:{admin}/healthz", timeout_s=20)
            assert daemon.process.returncode is None, "the daemon exited at start: " + (
                tmp_path / "daemon.log"
            ).read_text()[-300:].replace("\n", " ")
            async with aiohttp.ClientSession() as http:
                org = Org(emulator.url, http)
                await org.login()
                await org.call("POST", "sobjects/Account", {"Name": "Propagated"})
                await hooks.wait_for(1, timeout_s=30)
        finally:
            await daemon.stop()
