"""The emulator's Streaming API against a client nobody here wrote: CometD's own JavaScript.

`emulator/tests/conformance/cometd_client.js` runs the official `cometd` client on Node.js
(with `cometd-nodejs-client`) through handshake, replayed and live events, and recovery
after the emulator forgets its client. Its packages are installed with
`npm ci --prefix emulator/tests/conformance`; without them the test skips locally and fails
under CI (`CI` set), so a CI run can never pass without exercising it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient

CONFORMANCE_DIR = Path(__file__).parent / "conformance"
SCRIPT = CONFORMANCE_DIR / "cometd_client.js"
INSTALL_HINT = "npm ci --prefix emulator/tests/conformance"


def _require_node() -> str:
    node = shutil.which("node")
    problem = None
    if node is None:
        problem = "Node.js (node) is not on PATH"
    elif not (CONFORMANCE_DIR / "node_modules" / "cometd").is_dir():
        problem = f"the CometD client is not installed; run `{INSTALL_HINT}`"
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the CometD conformance test: {problem}")
        pytest.skip(problem)
    assert node is not None
    return node


@pytest.mark.slow
async def test_official_cometd_client_replays_receives_and_recovers(
    emulator: RunningEmulator, org: OrgClient
) -> None:
    node = _require_node()
    process = await asyncio.create_subprocess_exec(
        node,
        str(SCRIPT),
        emulator.url,
        org.token,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, (stdout.decode(), stderr.decode())
    result = json.loads(stdout)

    created = result["created"]
    assert len(created) == 3
    events = result["events"]
    # Replayed (-2), live, then the one created while the client was forgotten: once each.
    assert [event["recordIds"] for event in events] == [[record_id] for record_id in created]
    assert {event["channel"] for event in events} == {"/data/AccountChangeEvent"}
    assert {event["changeType"] for event in events} == {"CREATE"}
    assert [event["name"] for event in events] == [
        "before subscribing",
        "live",
        "while forgotten",
    ]
    replays = [event["replayId"] for event in events]
    assert replays == sorted(set(replays))
    assert result["connectErrors"] == ["403::Unknown client"]
    assert result["handshakes"] == [
        {"successful": True, "reestablish": False},
        {"successful": True, "reestablish": True},
    ]
    assert result["subscribes"] == [{"successful": True, "error": None}] * 2
    stats = emulator.ctx.stats
    assert stats["handshakes"] == 2 and stats["subscribes"] == 2
    assert stats["events_delivered"] == 3
