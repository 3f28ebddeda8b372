"""The whole daemon (`sftriggerd run`, a subprocess) started on a schema-7 file the previous
code wrote, with every delivery state on three endpoints: "a" (max_age 1 h, everything past
it but two deliveries under a live 30-day lease), "b" (max_age 30 days, one of its dead
redriven) and "gone" (no longer configured). After the upgrade (schema 8 and on): b's every open
delivery arrives over real HTTP, signed; none of a's is left open but the leased two (each
past max_age is expired by the start-up sweep or, when the worker claimed it first, sent
and arrived); /api/deliveries lists each state as the table holds it; the outbox gauges
count it."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.acceptance.cli import free_port
from tests.acceptance.harness import SECRET, start, verifying_receiver, wait_http
from tests.hostile.test_review17_schema8_rows import write_schema_7_store
from tests.support.clock import FrozenClock

WAIT_S = 20.0


def config(tmp_path: Path, store: Path, hooks: tuple[str, str], admin_port: int) -> Path:
    path = tmp_path / "sftriggerd.yaml"
    path.write_text(f"""
salesforce:
  login_url: http://127.0.0.1:9
  auth: {{flow: password, client_id: unused, client_secret: unused,
          username: unused, password: unused}}
store: {{url: "sqlite:///{store}"}}
endpoints:
  - {{name: a, url: "{hooks[0]}", secret: {SECRET}, timeout: 5s,
      retry: {{schedule: [200ms], max_age: 1h}}}}
  - {{name: b, url: "{hooks[1]}", secret: {SECRET}, timeout: 5s,
      retry: {{schedule: [200ms], max_age: 30d}}}}
server: {{listen: "127.0.0.1:{admin_port}", shutdown_grace: 2s}}
logging: {{level: info, format: json}}
""")
    return path


async def listed(http: aiohttp.ClientSession, admin: str, status: str, endpoint: str) -> int:
    query = f"{admin}/api/deliveries?status={status}&endpoint={endpoint}&limit=1000"
    async with http.get(query) as answer:
        assert answer.status == 200
        return len(await answer.json())


async def gauges(http: aiohttp.ClientSession, admin: str) -> dict[tuple[str, str], float]:
    async with http.get(f"{admin}/metrics") as answer:
        text = await answer.text()
    found: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        if family.name in ("sftriggerd_outbox_pending", "sftriggerd_outbox_dead"):
            for sample in family.samples:
                found[(family.name.rsplit("_", 1)[1], sample.labels["endpoint"])] = sample.value
    return found


async def test_the_daemon_on_an_upgraded_store_delivers_expires_lists_and_counts_each_delivery(
    tmp_path: Path,
) -> None:
    store = tmp_path / "state.db"
    two_days_ago = FrozenClock(datetime.now(UTC) - timedelta(days=2))
    await write_schema_7_store(store, two_days_ago)
    admin_port = free_port()
    admin = f"http://127.0.0.1:{admin_port}"
    async with (
        verifying_receiver() as receiver_a,
        verifying_receiver() as receiver_b,
        aiohttp.ClientSession() as http,
    ):
        hooks = (
            f"http://127.0.0.1:{receiver_a.port}/hook",
            f"http://127.0.0.1:{receiver_b.port}/hook",
        )
        daemon = await start(
            ["run", "--config", str(config(tmp_path, store, hooks, admin_port))],
            tmp_path / "daemon.log",
        )
        try:
            await wait_http(f"{admin}/readyz")
            await receiver_b.wait_for(38, timeout_s=WAIT_S)  # b: 36 open + 2 redriven
            counted = await gauges(http, admin)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(WAIT_S):
                    while not settled(counted):
                        await asyncio.sleep(0.1)
                        counted = await gauges(http, admin)
            # Past max_age, a's open deliveries the start-up sweep reached first are dead; the
            # ones the worker claimed first were sent (and arrived): none is left open but the
            # two under a live lease.
            dead_a = await listed(http, admin, "dead", "a")
            delivered_a = await listed(http, admin, "delivered", "a")
            assert counted == {**SETTLED, ("dead", "a"): dead_a}
            assert dead_a + delivered_a == 2 + 2 + 34
            assert delivered_a - 2 == receiver_a.unique()
            assert await listed(http, admin, "in_flight", "a") == 2
            assert await listed(http, admin, "pending", "a") == 0
            assert await listed(http, admin, "delivered", "b") == 2 + 38
            assert await listed(http, admin, "in_flight", "b") == 0
            assert await listed(http, admin, "in_flight", "gone") == 16
            assert await listed(http, admin, "pending", "gone") == 20
        finally:
            assert await daemon.stop() == 0
    assert receiver_b.unique() == 38
    assert receiver_a.bad_signatures == receiver_b.bad_signatures == 0


SETTLED = {
    ("pending", "a"): 2.0,  # the live leases
    ("pending", "b"): 0.0,
    ("dead", "b"): 0.0,
    ("pending", "gone"): 36.0,  # not configured: counted, left alone
    ("dead", "gone"): 2.0,
}


def settled(counted: dict[tuple[str, str], float]) -> bool:
    return all(counted.get(key) == value for key, value in SETTLED.items())
