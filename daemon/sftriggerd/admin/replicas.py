"""`GET /api/replicas`: the replicas sharing the store, and the triggers each leads.

Read from the store, not from this process: every replica answers alike. A replica counts
while it has been heard from within `ha.takeover`; a trigger is led by the holder of its
running lease (a lease that ran out, or was released, is led by nobody until taken)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from ..events.payload import format_time
from ..store.base import Store
from .guard import error
from .state import STATE_KEY, AdminState


@dataclass(frozen=True)
class ReplicaView:
    name: str
    this: bool  # the replica answering
    started_at: datetime
    heartbeat_at: datetime
    triggers: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "this": self.this,
            "started_at": format_time(self.started_at),
            "heartbeat_at": format_time(self.heartbeat_at),
            "triggers": self.triggers,
        }


async def replica_views(store: Store, state: AdminState) -> list[ReplicaView]:
    live = await store.replicas(seen_within=state.settings.ha.takeover)
    led: dict[str, list[str]] = defaultdict(list)
    for lease in await store.leases():
        if lease.live:
            led[lease.holder].append(lease.trigger)
    return [
        ReplicaView(
            name=replica.name,
            this=replica.name == state.replica,
            started_at=replica.started_at,
            heartbeat_at=replica.heartbeat_at,
            triggers=sorted(led[replica.name]),
        )
        for replica in live
    ]


async def list_replicas(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    if state.store is None:
        return error(503, "the store is not open")
    views = await replica_views(state.store, state)
    return web.json_response([view.as_json() for view in views])


def add_replica_routes(app: web.Application) -> None:
    app.router.add_get("/api/replicas", list_replicas)
