"""A trigger's source restarted around a change (a rewind) while the daemon runs."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from sftriggerd.metrics import Metrics
from sftriggerd.sources.restartable import RestartableSource
from sftriggerd.sources.status import TriggerStatus
from sftriggerd.supervision import RestartPolicy, Supervisor


class Source:
    """Runs until stopped; records what it saw. `stubborn` ignores the stop."""

    def __init__(self, number: int, log: list[str], stubborn: bool = False) -> None:
        self.name = "streaming:t"
        self.number = number
        self.log = log
        self.stubborn = stubborn
        self.started = asyncio.Event()

    def not_ready_reasons(self) -> list[str]:
        return [f"source {self.number}"]

    async def run(self, stopping: asyncio.Event) -> None:
        self.log.append(f"start {self.number}")
        self.started.set()
        try:
            if self.stubborn:
                await asyncio.Event().wait()
            await stopping.wait()
            self.log.append(f"stop {self.number}")
        except asyncio.CancelledError:
            self.log.append(f"cancelled {self.number}")
            raise


class Builds:
    def __init__(self, stubborn: bool = False) -> None:
        self.log: list[str] = []
        self.made: list[Source] = []
        self.stubborn = stubborn

    def __call__(self) -> Source:
        source = Source(len(self.made), self.log, self.stubborn and not self.made)
        self.made.append(source)
        return source


async def test_a_restart_stops_the_source_runs_the_work_then_starts_a_new_one() -> None:
    builds = Builds()
    part = RestartableSource("t", builds)
    status = TriggerStatus("t", "streaming", "configured", "running", "replay_id 9")
    part.status = status
    stopping = asyncio.Event()
    running = asyncio.create_task(part.run(stopping))
    await builds.made[0].started.wait()

    async def work() -> str:
        builds.log.append("work")
        return "done"

    assert await part.restart(work) == "done"
    await asyncio.wait_for(builds.made[1].started.wait(), 5)
    assert builds.log == ["start 0", "stop 0", "work", "start 1"]
    assert part.not_ready_reasons() == ["source 1"]
    assert (status.checkpoint, status.state) == (None, "starting")
    stopping.set()
    await asyncio.wait_for(running, 5)
    assert builds.log[-1] == "stop 1"


async def test_a_source_that_does_not_stop_is_cut_off() -> None:
    builds = Builds(stubborn=True)
    part = RestartableSource("t", builds, stop_timeout_s=0.1)
    stopping = asyncio.Event()
    running = asyncio.create_task(part.run(stopping))
    await builds.made[0].started.wait()

    async def work() -> None:
        builds.log.append("work")

    await part.restart(work)
    await asyncio.wait_for(builds.made[1].started.wait(), 5)
    assert builds.log == ["start 0", "cancelled 0", "work", "start 1"]
    stopping.set()
    await asyncio.wait_for(running, 5)


async def test_a_restart_while_the_part_is_down_builds_the_next_run_fresh() -> None:
    builds = Builds()
    part = RestartableSource("t", builds)

    async def work() -> int:
        return 7

    assert await part.restart(work) == 7
    stopping = asyncio.Event()
    running = asyncio.create_task(part.run(stopping))
    await asyncio.wait_for(builds.made[1].started.wait(), 5)
    assert builds.log == ["start 1"]  # the first build never ran
    stopping.set()
    await asyncio.wait_for(running, 5)


async def test_a_failed_work_leaves_the_source_running_again() -> None:
    builds = Builds()
    part = RestartableSource("t", builds)
    stopping = asyncio.Event()
    running = asyncio.create_task(part.run(stopping))
    await builds.made[0].started.wait()

    async def work() -> None:
        raise RuntimeError("store down")

    with pytest.raises(RuntimeError):
        await part.restart(work)
    # Not rebuilt (the change did not happen); the same source runs again.
    await asyncio.wait_for(_until(lambda: builds.log.count("start 0") == 2), 5)
    stopping.set()
    await asyncio.wait_for(running, 5)


class Failing:
    name = "polling:t"
    status = None

    def not_ready_reasons(self) -> list[str]:
        return []

    async def run(self, stopping: asyncio.Event) -> None:
        raise RuntimeError("boom")


async def test_a_failure_reaches_the_supervisor_which_restarts_the_part() -> None:
    supervisor = Supervisor(Metrics(), RestartPolicy(first_delay_s=0.01, max_delay_s=0.01))
    part = RestartableSource("t", Failing)
    stopping = asyncio.Event()
    running = asyncio.create_task(supervisor.run(part, stopping))
    await asyncio.wait_for(_until(lambda: supervisor.health["polling:t"].restarts >= 2), 5)
    assert supervisor.health["polling:t"].last_error == "boom"
    stopping.set()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(running, 5)


async def _until(condition: object) -> None:
    assert callable(condition)
    while not condition():
        await asyncio.sleep(0.01)


class FinishingSource:
    """Cancelled, it still finishes something on its way out (`finished` once done)."""

    name = "streaming:t"

    def __init__(self, blocked: asyncio.Event) -> None:
        self.blocked = blocked
        self.started = asyncio.Event()
        self.finished = False

    def not_ready_reasons(self) -> list[str]:
        return []

    async def run(self, stopping: asyncio.Event) -> None:
        self.started.set()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)  # one more step after the cancellation: a last write
            self.finished = True


async def test_a_cancelled_run_ends_only_once_its_source_has_ended() -> None:
    source = FinishingSource(asyncio.Event())
    part = RestartableSource("t", lambda: source)
    running = asyncio.create_task(part.run(asyncio.Event()))
    await source.started.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert source.finished, "the run was over while its source was still finishing"


class ShieldingSource(FinishingSource):
    """Cancelled, waits for a shielded write that cannot end (a commit in flight)."""

    async def run(self, stopping: asyncio.Event) -> None:
        self.started.set()
        try:
            await asyncio.Event().wait()
        finally:
            write = asyncio.ensure_future(self.blocked.wait())
            await asyncio.shield(write)
            self.finished = True


async def test_a_cancelled_run_whose_source_will_not_end_is_left_after_a_grace() -> None:
    blocked = asyncio.Event()
    source = ShieldingSource(blocked)
    part = RestartableSource("t", lambda: source)
    running = asyncio.create_task(part.run(asyncio.Event()))
    await source.started.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(running, 10)  # ends, after the grace, though the source hangs
    assert not source.finished
    blocked.set()  # let the leftover end, so nothing is left pending
    await asyncio.sleep(0.05)
