"""What the delivery tests share: endpoint settings, events to enqueue, and a dispatcher
run. The receiver and the store come from the test support plugin."""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sftriggerd.config.settings import EndpointSettings, RetrySettings
from sftriggerd.delivery import Dispatcher
from sftriggerd.routing import order_key
from sftriggerd.store.base import Store
from sftriggerd.store.records import Checkpoint, DeliveryRow, NewEvent

SECRET = "whsec_" + base64.b64encode(b"delivery-tests-key-0123456789ab").decode()
MS = timedelta(milliseconds=1)


def endpoint(url: str, **overrides: Any) -> EndpointSettings:
    schedule = overrides.pop("schedule", (100 * MS,))
    max_age = overrides.pop("max_age", timedelta(days=1))
    fields: dict[str, Any] = {
        "name": "hook",
        "url": url,
        "secret": SECRET,
        "timeout": timedelta(seconds=2),
        "retry": RetrySettings(schedule=schedule, max_age=max_age),
        **overrides,
    }
    return EndpointSettings.model_validate(fields)


_positions = itertools.count(1)


def new_event(name: str, record: str | None = None, ordered: bool = True) -> NewEvent:
    return NewEvent(
        event_id=name,
        record_id=record or f"rec-{name}",
        occurred_at=datetime.now(UTC) - timedelta(seconds=1),
        body=f'{{"id":"{name}"}}'.encode(),
        endpoints=("hook",),
        ordered_endpoints=frozenset({"hook"}) if ordered else frozenset(),
        order_key=order_key("t", record or f"rec-{name}"),
    )


async def enqueue(store: Store, *events: NewEvent) -> None:
    position = next(_positions)
    await store.ingest("t", events, Checkpoint(trigger="t", position={"n": position}))


async def row(store: Store, event_id: str) -> DeliveryRow:
    [found] = [r for r in await store.list_deliveries(limit=1000) if r.event_id == event_id]
    return found


@asynccontextmanager
async def running(dispatcher: Dispatcher) -> AsyncIterator[asyncio.Event]:
    """Runs the dispatcher; on leaving, stops it and waits for its drain."""
    stopping = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stopping))
    try:
        yield stopping
    finally:
        stopping.set()
        await asyncio.wait_for(task, timeout=10)
