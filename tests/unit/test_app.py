"""The app's lifecycle: parts run together, a failing part is restarted, a configuration error
stops everything, drain is bounded."""

import asyncio

import pytest

from sftriggerd.app import App
from sftriggerd.config import parse_settings
from sftriggerd.errors import ConfigError, PartFailedError
from sftriggerd.supervision import RestartPolicy

SETTINGS = parse_settings(
    """
salesforce: {auth: {client_id: c, client_secret: s, username: u, password: p}}
server: {listen: "127.0.0.1:0", shutdown_grace: 200ms}
""",
    environ={},
)


class Sleeper:
    def __init__(self, name: str, drain_s: float = 0.0, fail_after_s: float | None = None):
        self.name = name
        self.drain_s = drain_s
        self.fail_after_s = fail_after_s
        self.drained = False
        self.cancelled = False

    async def run(self, stopping: asyncio.Event) -> None:
        try:
            if self.fail_after_s is not None:
                await asyncio.sleep(self.fail_after_s)
                raise RuntimeError("boom")
            await stopping.wait()
            await asyncio.sleep(self.drain_s)
            self.drained = True
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    def not_ready_reasons(self) -> list[str]:
        return []


async def test_parts_drain_and_the_app_returns_on_stop() -> None:
    part = Sleeper("fast", drain_s=0.01)
    app = App(settings=SETTINGS, parts=[part])
    stopping = asyncio.Event()
    runner = asyncio.create_task(app.run(stopping))
    await asyncio.sleep(0.05)
    stopping.set()
    await asyncio.wait_for(runner, 2)
    assert part.drained


async def test_a_slow_drain_is_cancelled_after_the_grace() -> None:
    slow = Sleeper("slow", drain_s=30)
    app = App(settings=SETTINGS, parts=[slow])
    stopping = asyncio.Event()
    runner = asyncio.create_task(app.run(stopping))
    await asyncio.sleep(0.05)
    stopping.set()
    await asyncio.wait_for(runner, 2)
    assert slow.cancelled and not slow.drained


async def test_a_config_error_in_a_part_stops_the_others_and_raises() -> None:
    class Misconfigured(Sleeper):
        async def run(self, stopping: asyncio.Event) -> None:
            raise ConfigError(["triggers[0].where: not SOQL"])

    steady = Sleeper("steady")
    app = App(settings=SETTINGS, parts=[steady, Misconfigured("fragile")])
    with pytest.raises(PartFailedError, match="fragile failed: 1 configuration problem") as info:
        await asyncio.wait_for(app.run(asyncio.Event()), 2)
    assert steady.cancelled
    assert info.value.exit_code == 2  # as for a bad file at start: systemd does not restart it


class Flaky(Sleeper):
    """Fails `failures` times (raising, or returning on its own), then runs until stopped."""

    def __init__(self, name: str, failures: int, quit_instead: bool = False) -> None:
        super().__init__(name)
        self.failures = failures
        self.quit_instead = quit_instead
        self.runs = 0
        self.running = asyncio.Event()
        self.relapse = asyncio.Event()

    async def run(self, stopping: asyncio.Event) -> None:
        self.runs += 1
        if self.runs <= self.failures:
            if self.quit_instead:
                return
            raise RuntimeError(f"boom {self.runs}")
        self.running.set()
        await stopping.wait()


FAST = RestartPolicy(first_delay_s=0.01, max_delay_s=0.04)


@pytest.mark.parametrize("quit_instead", [False, True], ids=["raises", "returns"])
async def test_a_failing_part_is_restarted_and_the_others_keep_running(quit_instead: bool) -> None:
    steady = Sleeper("steady")
    flaky = Flaky("flaky", failures=4, quit_instead=quit_instead)
    app = App(settings=SETTINGS, parts=[steady, flaky], restart_policy=FAST)
    stopping = asyncio.Event()
    runner = asyncio.create_task(app.run(stopping))
    await asyncio.wait_for(flaky.running.wait(), 2)
    assert not runner.done() and not steady.cancelled
    restarts = app.metrics.registry.get_sample_value(
        "sftriggerd_part_restarts_total", {"part": "flaky"}
    )
    assert restarts == 4 and flaky.runs == 5
    (health,) = [part for part in app.supervisor.parts() if part.name == "flaky"]
    assert health.state == "running" and health.restarts == 4
    expected = "stopped on its own" if quit_instead else "boom 4"
    assert health.last_error == expected
    stopping.set()
    await asyncio.wait_for(runner, 2)
    assert steady.drained


async def test_stopping_during_the_back_off_ends_at_once_without_a_restart() -> None:
    flaky = Flaky("flaky", failures=1)
    slow = RestartPolicy(first_delay_s=30, max_delay_s=30)
    app = App(settings=SETTINGS, parts=[flaky], restart_policy=slow)
    stopping = asyncio.Event()
    runner = asyncio.create_task(app.run(stopping))
    async with asyncio.timeout(2):
        while not app.supervisor.not_ready_reasons():
            await asyncio.sleep(0.01)
    stopping.set()
    await asyncio.wait_for(runner, 2)
    assert flaky.runs == 1


async def test_a_part_that_fails_again_after_recovering_is_restarted_again() -> None:
    class Relapsing(Flaky):
        async def run(self, stopping: asyncio.Event) -> None:
            self.runs += 1
            if self.runs in (1, 3):
                raise RuntimeError(f"boom {self.runs}")
            self.running.set()
            if self.runs == 2:
                await self.relapse.wait()
                raise RuntimeError("boom again")
            await stopping.wait()

    part = Relapsing("relapsing", failures=0)
    app = App(settings=SETTINGS, parts=[part], restart_policy=FAST)
    stopping = asyncio.Event()
    runner = asyncio.create_task(app.run(stopping))
    await asyncio.wait_for(part.running.wait(), 2)
    part.running.clear()
    part.relapse.set()  # it worked for a while, then fails twice more
    await asyncio.wait_for(part.running.wait(), 2)
    (health,) = app.supervisor.parts()
    assert part.runs == 4 and health.restarts == 3 and health.state == "running"
    # Not five minutes of running in between: the back-off went on doubling (0.01, 0.02, 0.04).
    assert health.failures_in_a_row == 3
    stopping.set()
    await asyncio.wait_for(runner, 2)
