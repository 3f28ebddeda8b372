"""A running daemon rewound through the admin API: `sftriggerd run` streams from the emulator;
rewinding to a replay id re-reads the changes after it without sending them again, and with
`resend` delivers them again under the same webhook-ids."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sftriggerd.store.sqlite import SqliteStore
from tests.acceptance.cli import free_port, run_cli
from tests.acceptance.harness import (
    Org,
    Process,
    daemon_config,
    start,
    verifying_receiver,
    wait_http,
)
from tests.acceptance.test_streaming_end_to_end import ready

TOKEN = "rewind-admin-token"
TRIGGERS = """  - {name: accounts, object: Account, mode: streaming, fields: [Name],
      start_from: latest}"""


async def stored_replay_id(path: Path) -> Any:
    """The trigger's checkpoint as the daemon left it (read beside it: WAL lets both)."""
    store = SqliteStore(path)
    await store.open(create=False)
    try:
        saved = await store.checkpoint("accounts")
        return None if saved is None else saved.position.get("replay_id")
    finally:
        await store.close()


async def wait_replay_id(path: Path, expected: int, timeout_s: float = 30) -> None:
    async with asyncio.timeout(timeout_s):
        while await stored_replay_id(path) != expected:
            await asyncio.sleep(0.1)


async def rewind(http: aiohttp.ClientSession, admin_port: int, body: dict[str, Any]) -> Any:
    url = f"http://127.0.0.1:{admin_port}/api/triggers/accounts/rewind"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with http.post(url, json=body, headers=headers) as response:
        assert response.status == 200, await response.text()
        return await response.json()


@pytest.mark.slow
async def test_rewind_a_running_stream_to_a_replay_id(tmp_path: Path) -> None:
    emulator_port, admin_port = free_port(), free_port()
    emulator = await start(["emulator", "--port", str(emulator_port)], tmp_path / "emulator.log")
    daemon: Process | None = None
    state = tmp_path / "state.db"
    try:
        await wait_http(f"http://127.0.0.1:{emulator_port}/_emulator/stats")
        async with aiohttp.ClientSession() as http, verifying_receiver() as hooks:
            org = Org(f"http://127.0.0.1:{emulator_port}", http)
            await org.login()
            config = daemon_config(tmp_path, emulator_port, hooks.port, admin_port, TRIGGERS)
            text = config.read_text().replace("shutdown_grace: 5s", f"admin_token: {TOKEN}")
            config.write_text(text)
            daemon = await start(["run", "--config", str(config)], tmp_path / "daemon.log")
            await ready(admin_port)

            for n in range(5):
                await org.call("POST", "sobjects/Account", {"Name": f"A{n}"})
            await hooks.wait_for(5)
            replay_ids = sorted(b["source"]["replay_id"] for b in hooks.bodies)
            webhook_ids = {
                b["source"]["replay_id"]: i for b, i in zip(hooks.bodies, hooks.ids, strict=True)
            }
            await wait_replay_id(state, replay_ids[-1])

            # Without resend: re-read from after the second change, none sent again.
            answer = await rewind(http, admin_port, {"to": str(replay_ids[1])})
            assert answer["restarted"] is True and answer["resent"] is None
            assert answer["position"]["replay_id"] == replay_ids[1]
            await wait_replay_id(state, replay_ids[-1])  # the re-read reached the end again
            await org.call("POST", "sobjects/Account", {"Name": "after"})
            await hooks.wait_for(6)
            assert len(hooks.ids) == 6
            newest = max(b["source"]["replay_id"] for b in hooks.bodies)
            await wait_replay_id(state, newest)

            # With resend: the changes after it go out again, with their webhook-ids.
            answer = await rewind(http, admin_port, {"to": str(replay_ids[1]), "resend": True})
            assert answer["resent"] == {"requeued": 4, "already_pending": 0}
            async with asyncio.timeout(30):
                while len(hooks.ids) < 10:
                    await asyncio.sleep(0.1)
            await wait_replay_id(state, newest)
            await org.call("POST", "sobjects/Account", {"Name": "last"})
            await hooks.wait_for(7)
            counts = Counter(hooks.ids)
            again = {i for i, count in counts.items() if count == 2}
            assert again == {webhook_ids[r] for r in replay_ids[2:]} | {hooks.ids[5]}
            assert len(hooks.ids) == 11 and max(counts.values()) == 2
            assert hooks.bad_signatures == 0
            newest = max(b["source"]["replay_id"] for b in hooks.bodies)
            await wait_replay_id(state, newest)

            # The CLI, while the daemon runs, asks it to rewind (a store write would be lost).
            done = run_cli(
                "triggers", "rewind", "accounts", "--to", str(replay_ids[0]),
                "--config", str(config),
            )  # fmt: skip
            assert done.returncode == 0 and "through the running daemon" in done.stdout
            await wait_replay_id(state, newest)
            assert await daemon.stop() == 0
            assert len(hooks.ids) == 11

            # Stopped: the CLI rewinds; the next start re-reads and resends from there.
            done = run_cli(
                "triggers", "rewind", "accounts", "--to", str(replay_ids[3]), "--resend",
                "--config", str(config),
            )  # fmt: skip
            assert done.returncode == 0 and "3 stored deliveries" in done.stdout, done.stderr
            daemon = await start(["run", "--config", str(config)], tmp_path / "daemon.log")
            async with asyncio.timeout(30):
                while len(hooks.ids) < 14:
                    await asyncio.sleep(0.1)
            last = next(
                i
                for b, i in zip(hooks.bodies, hooks.ids, strict=True)
                if b["record"]["Name"] == "last"
            )
            assert set(hooks.ids[11:]) == {webhook_ids[replay_ids[4]], hooks.ids[5], last}
            await wait_replay_id(state, max(b["source"]["replay_id"] for b in hooks.bodies))
            assert len(hooks.ids) == 14
            assert await daemon.stop() == 0
            daemon = None
    finally:
        if daemon is not None:
            await daemon.stop(signal.SIGKILL)
        await emulator.stop()
