"""Part supervision: the back-off rule, what counts as incurable, and what /readyz,
/api/triggers and /api/parts say while a part restarts (the app's real admin server)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sftriggerd.app import App
from sftriggerd.config import parse_settings
from sftriggerd.errors import ConfigError, StoreError
from sftriggerd.sources.status import TriggerStatus
from sftriggerd.supervision import (
    RestartPolicy,
    describe_error,
    failures_in_a_row,
    is_incurable,
    restart_delay_s,
)

POLICY = RestartPolicy()
SETTINGS = parse_settings(
    """
salesforce: {auth: {client_id: c, client_secret: s, username: u, password: p}}
server: {listen: "127.0.0.1:0", shutdown_grace: 200ms}
""",
    environ={},
)


def test_the_back_off_doubles_from_one_second_to_a_minute() -> None:
    assert [restart_delay_s(n, POLICY) for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_five_minutes_of_running_start_the_back_off_over() -> None:
    assert failures_in_a_row(6, ran_s=299.9, policy=POLICY) == 7
    assert failures_in_a_row(6, ran_s=300.0, policy=POLICY) == 1
    assert failures_in_a_row(0, ran_s=0.0, policy=POLICY) == 1


@given(failures=st.integers(), ran_s=st.floats(allow_nan=False))
def test_every_delay_is_between_the_first_and_the_cap(failures: int, ran_s: float) -> None:
    count = failures_in_a_row(failures, ran_s, POLICY)
    assert count >= 1
    delay_s = restart_delay_s(count, POLICY)
    assert POLICY.first_delay_s <= delay_s <= POLICY.max_delay_s and math.isfinite(delay_s)
    assert restart_delay_s(count + 1, POLICY) >= delay_s


def test_only_configuration_errors_are_incurable() -> None:
    config = ConfigError(["x: wrong"])
    assert is_incurable(config)
    assert is_incurable(ExceptionGroup("dispatcher", [RuntimeError("a"), config]))
    assert not is_incurable(StoreError("locked"))
    assert not is_incurable(ValueError("invalid literal for int() with base 10: '²'"))
    assert not is_incurable(ExceptionGroup("dispatcher", [RuntimeError("a")]))


def test_errors_are_described_in_one_bounded_line_without_passwords() -> None:
    assert describe_error(KeyError()) == "KeyError"
    proxy = OSError("Cannot connect via http://bob:hunter2@proxy:3128\nretry")
    assert describe_error(proxy) == "Cannot connect via http://proxy:3128 retry"
    assert len(describe_error(ValueError("9" * 5000))) == 500
    assert describe_error(ExceptionGroup("g", [ValueError("inner")])) == "inner"


class FlakySource:
    """A trigger's source that fails at once on every run until `cured` is set."""

    def __init__(self) -> None:
        self.name = "polling:accounts"
        self.status = TriggerStatus("accounts", "polling", "configured: mode polling")
        self.runs = 0
        self.cured = asyncio.Event()

    async def run(self, stopping: asyncio.Event) -> None:
        self.runs += 1
        if not self.cured.is_set():
            raise ValueError(f"invalid literal for int() with base 10: '²' (run {self.runs})")
        self.status.state = "running"
        self.status.last_error = None
        await stopping.wait()

    def not_ready_reasons(self) -> list[str]:
        return [] if self.status.state == "running" else ["accounts: first poll not done"]


class Steady:
    name = "dispatcher"

    def __init__(self) -> None:
        self.cancelled = False

    async def run(self, stopping: asyncio.Event) -> None:
        try:
            await stopping.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    def not_ready_reasons(self) -> list[str]:
        return []


async def test_a_restarting_source_is_failed_in_the_api_and_not_ready() -> None:
    source, steady = FlakySource(), Steady()
    app = App(
        settings=SETTINGS,
        parts=[source, steady],
        restart_policy=RestartPolicy(first_delay_s=0.02, max_delay_s=0.05),
    )
    app.admin_state().trigger_status = lambda: [source.status.as_json()]
    stopping = asyncio.Event()
    runner = asyncio.create_task(app.run(stopping))
    async with aiohttp.ClientSession() as http:

        async def get(path: str) -> tuple[int, Any]:
            async with http.get(f"http://127.0.0.1:{app.admin_port}{path}") as response:
                return response.status, await response.json()

        async with asyncio.timeout(4):
            # Two restarts, each failing again before the loop turns: restarting all along.
            while app.admin_port is None or source.runs < 3:
                await asyncio.sleep(0.01)
            status, ready = await get("/readyz")
            assert status == 503 and ready["failing_parts"] == ["polling:accounts"]
            assert any("polling:accounts: failed (invalid literal" in r for r in ready["reasons"])
            _, (trigger,) = await get("/api/triggers")
            assert trigger["state"] == "failed" and "'²'" in trigger["last_error"]
            _, parts = await get("/api/parts")
            assert {part["name"]: part["state"] for part in parts} == {
                "polling:accounts": "restarting",
                "dispatcher": "running",
            }
            source.cured.set()
            while (await get("/readyz"))[0] != 200:
                assert not runner.done()
                await asyncio.sleep(0.02)
        _, (trigger,) = await get("/api/triggers")
        assert trigger["state"] == "running" and trigger["last_error"] is None
        _, parts = await get("/api/parts")
        (restarted,) = [part for part in parts if part["name"] == "polling:accounts"]
        assert restarted["restarts"] == source.runs - 1 >= 2
        assert restarted["state"] == "running" and "'²'" in restarted["last_error"]
    assert not steady.cancelled
    stopping.set()
    await asyncio.wait_for(runner, 3)


@pytest.mark.parametrize("ran_s", [0.0, 400.0])
def test_the_supervisor_counts_failures_from_the_clock(ran_s: float) -> None:
    from sftriggerd.metrics import Metrics
    from sftriggerd.supervision import PartHealth, Supervisor

    now = [0.0]
    supervisor = Supervisor(Metrics(), POLICY, clock=lambda: now[0])
    health = PartHealth("p", failures_in_a_row=4)
    delay_s = supervisor.record_failure(FlakySource(), health, "boom", ran_s)
    assert delay_s == (16.0 if ran_s == 0.0 else 1.0)
    assert health.state == "restarting" and health.last_error == "boom"
