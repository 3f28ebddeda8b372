"""Builds the daemon's parts from settings and runs them until asked to stop.

Every part runs in one TaskGroup under the supervisor: a part that fails is restarted with
back-off (`supervision`), and only what a restart cannot cure stops the process. Stopping is an
event; each part drains on its own, and whatever has not finished when
`server.shutdown_grace` runs out is cancelled.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from .admin.server import AdminServer, build_admin_app
from .admin.state import AdminState
from .config import Settings
from .errors import PartFailedError
from .logs import get_logger
from .metrics import Metrics
from .sdnotify import notify
from .store.base import Store
from .supervision import RestartPolicy, Supervisor

log = get_logger(__name__)


class Part(Protocol):
    """One long-running piece of the daemon (a source, a dispatcher, ...)."""

    name: str

    async def run(self, stopping: asyncio.Event) -> None:
        """Works until `stopping` is set, then drains and returns."""
        ...

    def not_ready_reasons(self) -> list[str]:
        """Why this part cannot take traffic yet; empty when it can."""
        ...


@dataclass
class App:
    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    parts: list[Part] = field(default_factory=list)
    store: Store | None = None
    admin: AdminState | None = None
    admin_port: int | None = None
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)
    supervisor: Supervisor = field(init=False)

    def __post_init__(self) -> None:
        self.supervisor = Supervisor(self.metrics, self.restart_policy)

    def admin_state(self) -> AdminState:
        if self.admin is None:
            self.admin = AdminState(settings=self.settings, metrics=self.metrics, store=self.store)
        self.admin.readiness = [
            self.supervisor.not_ready_reasons,
            *(part.not_ready_reasons for part in self.parts),
        ]
        self.admin.part_health = self.supervisor.parts
        return self.admin

    async def run(self, stopping: asyncio.Event) -> None:
        server = self.settings.server
        async with AdminServer(build_admin_app(self.admin_state()), server.host, server.port) as ad:
            self.admin_port = ad.bound_port
            log.info("daemon_started", parts=[part.name for part in self.parts])
            notify("READY=1")
            await self._run_parts(stopping)
            notify("STOPPING=1")
        log.info("daemon_stopped")

    async def _run_parts(self, stopping: asyncio.Event) -> None:
        grace_s = self.settings.server.shutdown_grace.total_seconds()
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(self.supervisor.run(part, stopping), name=part.name)
                    for part in self.parts
                ]
                group.create_task(self._enforce_grace(tasks, stopping, grace_s))
        except* PartFailedError as failed:
            raise failed.exceptions[0] from None

    async def _enforce_grace(
        self, tasks: list[asyncio.Task[None]], stopping: asyncio.Event, grace_s: float
    ) -> None:
        await stopping.wait()
        log.info("daemon_stopping", grace_s=grace_s)
        if not tasks:
            return
        # A little past the grace: the dispatcher bounds its own drain by the grace and
        # must get the chance to release its unfinished claims after it.
        _, unfinished = await asyncio.wait(tasks, timeout=grace_s + 1.0)
        for task in unfinished:
            log.warning("part_drain_timeout", part=task.get_name())
            task.cancel()
