"""A streaming source wired to a real emulator (short long-polls, or a Pub/Sub stream with
short keepalives) and a real SQLite store."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from sftriggerd.config.settings import TriggerSettings
from sftriggerd.metrics import Metrics
from sftriggerd.salesforce.client import SalesforceClient
from sftriggerd.salesforce.pubsub.client import PubSubClient
from sftriggerd.sources.context import SourceContext
from sftriggerd.sources.pubsub_transport import pubsub_transports
from sftriggerd.sources.status import TriggerStatus
from sftriggerd.sources.streaming import StreamingSource
from sftriggerd.store.base import Store
from tests.integration.polling_rig import RecordingIngest, wire


@dataclass
class StreamingRig:
    source: StreamingSource
    ingest: RecordingIngest
    store: Store
    client: SalesforceClient
    metrics: Metrics
    stopping: asyncio.Event
    task: asyncio.Task[None] | None = None
    pubsub: PubSubClient | None = None  # its own client, when it streams over Pub/Sub

    def changes(self) -> list[tuple[str, str | None]]:
        return [(e.change, e.record_id) for e in self.ingest.new]

    def start(self) -> None:
        self.stopping = asyncio.Event()
        self.task = asyncio.create_task(self.source.run(self.stopping))

    async def stop(self) -> None:
        self.stopping.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)

    async def connected(self, timeout_s: float = 10) -> None:
        async with asyncio.timeout(timeout_s):
            while not self.source.status.connected:
                await asyncio.sleep(0.02)

    async def wait_events(self, count: int, timeout_s: float = 10) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.ingest.new) < count:
                await asyncio.sleep(0.02)

    def faults(self, kind: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "sftriggerd_stream_faults_total", {"trigger": self.source.trigger.name, "kind": kind}
        )
        return value or 0.0


async def make_streaming_rig(
    emulator_url: str,
    http: aiohttp.ClientSession,
    state_dir: Path,
    store: Store | None = None,
    *,
    pubsub_address: str | None = None,
    pubsub_keepalive_s: float = 1.0,
    **trigger: Any,
) -> StreamingRig:
    """Over CometD, or over Pub/Sub at `pubsub_address` (`host:port`, plaintext) whose
    keepalives come every `pubsub_keepalive_s` (the emulator's setting of that name): the
    stream's watchdog gives up a second after a keepalive is due. The caller closes
    `rig.pubsub`."""
    fields = {
        "name": "accounts",
        "object": "Account",
        "mode": "streaming",
        "fields": ["Name"],
        "start_from": "latest",
        **({} if pubsub_address is None else {"transport": "pubsub"}),
        **trigger,
    }
    trigger_settings = TriggerSettings.model_validate(fields)
    metrics = Metrics()
    store, client, ingest = await wire(emulator_url, http, state_dir, metrics, store)
    status = TriggerStatus(name=trigger_settings.name, mode="streaming", mode_reason="test")
    pubsub = (
        None if pubsub_address is None else PubSubClient(client.session, f"http://{pubsub_address}")
    )
    context = SourceContext(
        client=client, ingest=ingest, store=store, metrics=metrics, pubsub=pubsub
    )
    transport = (
        None
        if pubsub is None
        else pubsub_transports(
            pubsub, keepalive_s=pubsub_keepalive_s, stall_margin_s=1.0, settle_s=0.2
        )
    )
    source = StreamingSource(
        trigger_settings,
        context,
        status,
        backoff_cap_s=0.2,
        stall_margin_s=1.0,
        transport=transport,
    )
    return StreamingRig(source, ingest, store, client, metrics, asyncio.Event(), pubsub=pubsub)
