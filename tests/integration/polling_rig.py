"""A polling source wired to a real emulator and a real SQLite store, for tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from sftriggerd.config.settings import EndpointSettings, SalesforceSettings, TriggerSettings
from sftriggerd.events.model import Event
from sftriggerd.ingest import Ingest
from sftriggerd.metrics import Metrics
from sftriggerd.salesforce.client import RetryPolicy, SalesforceClient
from sftriggerd.sources.context import SourceContext
from sftriggerd.sources.polling import PollingSource
from sftriggerd.sources.status import TriggerStatus
from sftriggerd.store.base import Store
from sftriggerd.store.records import Checkpoint, IngestResult, PoisonEvent
from sftriggerd.store.sqlite import SqliteStore

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class RecordingIngest(Ingest):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.new: list[Event] = []

    async def __call__(
        self,
        trigger: str,
        events: Sequence[Event],
        checkpoint: Checkpoint | None,
        poison: Sequence[PoisonEvent] = (),
    ) -> IngestResult:
        known = {e.id for e in self.new}
        result = await super().__call__(trigger, events, checkpoint, poison)
        self.new.extend(e for e in events if e.id not in known)
        return result


@dataclass
class PollingRig:
    source: PollingSource
    ingest: RecordingIngest
    store: Store
    client: SalesforceClient
    metrics: Metrics
    now_offset: timedelta = field(default=timedelta(0))

    def changes(self) -> list[tuple[str, str | None]]:
        return [(e.change, e.record_id) for e in self.ingest.new]


async def wire(
    emulator_url: str,
    http: aiohttp.ClientSession,
    state_dir: Path,
    metrics: Metrics,
    store: Store | None,
    budget: float = 0.5,
) -> tuple[SqliteStore, SalesforceClient, RecordingIngest]:
    """The store, a client logged in as the emulator's admin, and a recording ingest."""
    settings = SalesforceSettings.model_validate(
        {
            "login_url": emulator_url,
            "api_budget": budget,
            "auth": {
                "client_id": "emulator-client",
                "client_secret": "emulator-secret",
                "username": "admin@emulator.local",
                "password": "emulator",
            },
        }
    )
    endpoint = EndpointSettings.model_validate(
        {"name": "hook", "url": "http://127.0.0.1:9/h", "secret": SECRET}
    )
    if store is None:
        store = SqliteStore(state_dir / "state.db")
        await store.open()
    retry = RetryPolicy(attempts=3, base_s=0.01, cap_s=0.02)
    client = SalesforceClient(settings, http, metrics, retry=retry)
    return store, client, RecordingIngest(store, [endpoint], metrics)


async def make_rig(
    emulator_url: str,
    http: aiohttp.ClientSession,
    state_dir: Path,
    store: Store | None = None,
    batch_size: int | None = None,
    budget: float = 0.5,
    **trigger: Any,
) -> PollingRig:
    trigger_settings = TriggerSettings.model_validate(
        {
            "name": "accounts",
            "object": "Account",
            "mode": "polling",
            "fields": ["Name"],
            "poll_interval": "100ms",
            "poll_delay": "0s",
            "start_from": "earliest",
            **trigger,
        }
    )
    metrics = Metrics()
    store, client, ingest = await wire(emulator_url, http, state_dir, metrics, store, budget)
    status = TriggerStatus(name="accounts", mode="polling", mode_reason="configured")
    rig = PollingRig(
        source=None,
        ingest=ingest,
        store=store,
        client=client,  # type: ignore[arg-type]
        metrics=metrics,
    )
    context = SourceContext(
        client=client,
        ingest=ingest,
        store=store,
        metrics=metrics,
        clock=lambda: datetime.now(UTC) + rig.now_offset,
    )
    rig.source = PollingSource(trigger_settings, context, status, batch_size=batch_size)
    return rig
