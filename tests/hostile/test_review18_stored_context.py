"""An event's stored trace context is read back with its claim as whatever the column
holds. SQLite keeps any type in a TEXT column, so a store written by another tool (or an
edited file) can hand back bytes; reading them as a traceparent raises in the delivery
attempt's span before the POST, out of the sender, so the endpoint worker fails on that
claim at every restart and the event, and the ones sent beside it, never go out. Tracing
must never cost a delivery.

Real daemon (`run_daemon`) on the emulator, a real SQLite file, tracing on with the SDK's
in-memory exporter."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider

from sftriggerd.config import Settings, parse_settings
from sftriggerd.daemon import (
    DispatcherFactory,
    run_daemon,
)
from sftriggerd.delivery.dispatcher import build_dispatcher
from sftriggerd.tracing.otel import OtelTracing
from tests.acceptance.cli import free_port
from tests.support.emulator import RunningEmulator
from tests.support.receiver import Receiver
from tests.support.sfclient import OrgClient


def settings_for(emulator: RunningEmulator, hook_url: str, db: Path) -> Settings:
    return parse_settings(
        f"""
salesforce:
  login_url: {emulator.url}
  auth: {{client_id: emulator-client, client_secret: emulator-secret,
          username: admin@emulator.local, password: emulator}}
  transport: cometd
store: {{url: "sqlite:///{db}"}}
triggers:
  - {{name: accounts, object: Account, mode: streaming, fields: [Name], start_from: earliest}}
endpoints:
  - {{name: receiver, url: "{hook_url}", secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw,
      timeout: 5s}}
server: {{listen: "127.0.0.1:{free_port()}", shutdown_grace: 1s}}
""",
        environ={},
    )


async def run_until(
    settings: Settings,
    dispatcher: DispatcherFactory | None,
    done: Callable[[], bool],
    timeout_s: float,
) -> bool:
    """Runs the daemon (tracing on) until `done()` or the timeout; whether it was done."""
    stopping = asyncio.Event()
    traces = OtelTracing(TracerProvider())
    task = asyncio.create_task(run_daemon(settings, stopping, dispatcher, traces=traces))
    try:
        async with asyncio.timeout(timeout_s):
            while not done():
                assert not task.done(), "the daemon stopped"
                await asyncio.sleep(0.05)
        return True
    except TimeoutError:
        return False
    finally:
        stopping.set()
        await asyncio.wait_for(task, 15)


async def test_a_stored_context_that_is_not_text_costs_no_delivery(
    tmp_path: Path, emulator: RunningEmulator, org: OrgClient, receiver: Receiver
) -> None:
    db = tmp_path / "state.db"
    settings = settings_for(emulator, receiver.url, db)

    def stored() -> int:
        if not db.exists():
            return 0
        with sqlite3.connect(db) as conn:
            try:
                return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
            except sqlite3.OperationalError:
                return 0

    await org.create("Account", {"Name": "Odd context"})
    await org.create("Account", {"Name": "Plain context"})
    assert await run_until(settings, None, lambda: stored() == 2, 20)
    with sqlite3.connect(db) as conn:  # one event's context as bytes, the other's none
        conn.execute("UPDATE events SET trace_context = CAST(trace_context AS BLOB)")
        conn.execute(
            "UPDATE events SET trace_context = NULL WHERE seq = (SELECT max(seq) FROM events)"
        )
    delivered = await run_until(
        settings, build_dispatcher, lambda: len(set(receiver.ids())) == 2, 20
    )
    assert delivered, f"delivered {len(set(receiver.ids()))} of 2 events"
