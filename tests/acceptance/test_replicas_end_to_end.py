"""Two `sftriggerd run` replicas on one PostgreSQL database: each trigger read by one of
them, every change delivered, and the triggers of a replica killed taken over by the other."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.acceptance.cli import free_port
from tests.acceptance.harness import (
    SECRET,
    Org,
    Process,
    start,
    verifying_receiver,
    wait_http,
)
from tests.support.waiting import eventually

TRIGGERS = """
  - {name: accounts, object: Account, mode: polling, fields: [Name], poll_interval: 1s,
     poll_delay: 0s, start_from: earliest}
  - {name: contacts, object: Contact, mode: polling, fields: [LastName], poll_interval: 1s,
     poll_delay: 0s, start_from: earliest}"""


def replica_config(
    tmp_path: Path, name: str, store_url: str, emulator_port: int, hooks_port: int, port: int
) -> Path:
    config = tmp_path / f"{name}.yaml"
    config.write_text(f"""
salesforce:
  login_url: http://127.0.0.1:{emulator_port}
  auth: {{client_id: emulator-client, client_secret: emulator-secret,
          username: admin@emulator.local, password: emulator}}
store: {{url: "{store_url}", pool_size: 4}}
ha: {{takeover: 6s, renew_every: 500ms, replica_name: {name}}}
triggers:{TRIGGERS}
endpoints:
  - {{name: receiver, url: "http://127.0.0.1:{hooks_port}/hook", secret: {SECRET},
      timeout: 5s, retry: {{schedule: [200ms, 1s], max_age: 10m}}}}
server: {{listen: "127.0.0.1:{port}", shutdown_grace: 5s}}
logging: {{level: info, format: json}}
""")
    return config


async def get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as response:
        return await response.json()


@pytest.mark.slow
async def test_two_replicas_share_the_triggers_and_one_takes_over_from_a_killed_one(
    tmp_path: Path, postgres_url: str
) -> None:
    emulator_port = free_port()
    emulator = await start(
        ["emulator", "--port", str(emulator_port), "--state", str(tmp_path / "org")],
        tmp_path / "emulator.log",
    )
    daemons: dict[str, Process] = {}
    try:
        await wait_http(f"http://127.0.0.1:{emulator_port}/_emulator/stats")
        async with aiohttp.ClientSession() as http, verifying_receiver() as hooks:
            org = Org(f"http://127.0.0.1:{emulator_port}", http)
            await org.login()
            admin = {}
            for name in ("one", "two"):
                port = free_port()
                config = replica_config(
                    tmp_path, name, postgres_url, emulator_port, hooks.port, port
                )
                daemons[name] = await start(
                    ["run", "--config", str(config)], tmp_path / f"{name}.log"
                )
                admin[name] = f"http://127.0.0.1:{port}"

            async def led() -> dict[str, list[str]]:
                replicas = await get(http, admin["one"] + "/api/replicas")
                return {r["name"]: r["triggers"] for r in replicas}

            async def spread() -> bool:
                try:
                    return sorted(map(len, (await led()).values())) == [1, 1]
                except aiohttp.ClientError:
                    return False

            await eventually(spread, timeout_s=60)
            await org.create_many([{"Name": f"Account {i}"} for i in range(10)])
            await org.create_many([{"LastName": f"Contact {i}"} for i in range(10)], "Contact")
            await hooks.wait_for(20)

            leaders = await led()
            killed = next(name for name, triggers in leaders.items() if "accounts" in triggers)
            survivor = "two" if killed == "one" else "one"
            assert await daemons.pop(killed).stop(signal.SIGKILL) == -signal.SIGKILL
            await org.create_many([{"Name": f"After {i}"} for i in range(10)])
            await hooks.wait_for(30)  # read by the survivor once the dead one's lease ran out
            triggers = await get(http, admin[survivor] + "/api/triggers")
            assert {t["name"]: t["leader"] for t in triggers} == {
                "accounts": survivor,
                "contacts": survivor,
            }
            assert hooks.bad_signatures == 0
            assert {b["trigger"] for b in hooks.bodies} == {"accounts", "contacts"}
            assert await daemons.pop(survivor).stop() == 0
    finally:
        for process in daemons.values():
            await process.stop(signal.SIGKILL)
        await emulator.stop()
