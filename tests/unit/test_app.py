"""The app's lifecycle: parts run together, a dying part stops everything, drain is bounded."""

import asyncio

import pytest

from sftriggerd.app import App
from sftriggerd.config import parse_settings
from sftriggerd.errors import PartFailedError

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


async def test_a_dying_part_stops_the_others_and_raises() -> None:
    steady = Sleeper("steady")
    app = App(settings=SETTINGS, parts=[steady, Sleeper("fragile", fail_after_s=0.02)])
    with pytest.raises(PartFailedError, match="fragile failed: boom"):
        await asyncio.wait_for(app.run(asyncio.Event()), 2)
    assert steady.cancelled


async def test_a_part_that_returns_on_its_own_is_a_failure() -> None:
    class Quitter(Sleeper):
        async def run(self, stopping: asyncio.Event) -> None:
            return None

    with pytest.raises(PartFailedError, match="stopped on its own"):
        await asyncio.wait_for(App(settings=SETTINGS, parts=[Quitter("q")]).run(asyncio.Event()), 2)
