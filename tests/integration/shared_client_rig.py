"""Several streaming sources on one CometD hub (one Bayeux client), as the daemon runs them:
one Salesforce client, one SQLite store, one metrics registry, and per trigger an ingest
that records every event it stores (repeats included) and can be held shut. The emulator
here refuses as many handshakes as a test asks (HTTP 503), before they reach it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from sftriggerd.config.settings import EndpointSettings, TriggerSettings
from sftriggerd.events.model import Event
from sftriggerd.metrics import Metrics
from sftriggerd.salesforce.client import SalesforceClient
from sftriggerd.sources.cometd_hub import CometdHub
from sftriggerd.sources.context import SourceContext
from sftriggerd.sources.status import TriggerStatus
from sftriggerd.sources.streaming import StreamingSource
from sftriggerd.store.base import Store
from sftriggerd.store.records import Checkpoint, IngestResult, PoisonEvent
from tests.integration.polling_rig import SECRET, RecordingIngest, wire
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import control

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class HandshakeRefusal:
    """Answers the next `remaining` handshakes HTTP 503, as an overloaded org may."""

    remaining: int = 0
    refused: int = 0

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.remaining > 0 and request.path.startswith("/cometd/"):
            sent = json.loads(await request.read())
            if isinstance(sent, list) and any(
                isinstance(m, dict) and m.get("channel") == "/meta/handshake" for m in sent
            ):
                self.remaining -= 1
                self.refused += 1
                return web.Response(status=503, text="Service Unavailable")
        return await handler(request)


class HeldIngest(RecordingIngest):
    """Records every event it stored, repeats included (`received`); while `gate` is clear,
    an ingest waits for it (a trigger whose store is slow)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received: list[Event] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(
        self,
        trigger: str,
        events: Sequence[Event],
        checkpoint: Checkpoint | None,
        poison: Sequence[PoisonEvent] = (),
    ) -> IngestResult:
        await self.gate.wait()
        result = await super().__call__(trigger, events, checkpoint, poison)
        self.received.extend(events)
        return result


def label(event: Event) -> str:
    """What a test made the event from: a record id, a generic payload, an event's amount."""
    if event.record_id is not None:
        return event.record_id
    if "payload" in event.record:
        return str(event.record["payload"])
    return str(event.record.get("Amount__c"))


@dataclass
class SharedTrigger:
    source: StreamingSource
    ingest: HeldIngest
    metrics: Metrics
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.source.trigger.name

    def labels(self) -> list[str]:
        """Every event stored, in order, repeats included."""
        return [label(event) for event in self.ingest.received]

    def start(self) -> None:
        self.stopping = asyncio.Event()
        self.task = asyncio.create_task(self.source.run(self.stopping))

    async def stop(self) -> None:
        self.stopping.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)
            self.task = None

    async def connected(self, timeout_s: float = 10) -> None:
        async with asyncio.timeout(timeout_s):
            while not self.source.status.connected:
                await asyncio.sleep(0.02)

    async def wait_events(self, count: int, timeout_s: float = 10) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.ingest.received) < count:
                await asyncio.sleep(0.02)

    def faults(self, kind: str) -> float:
        labels = {"trigger": self.name, "kind": kind}
        value = self.metrics.registry.get_sample_value("sftriggerd_stream_faults_total", labels)
        return value or 0.0


class SharedRig:
    """Triggers made on `hub`; `restart_hub` gives later triggers a new one (a daemon
    restart). `close` stops every trigger and closes hubs and store."""

    def __init__(
        self,
        emulator: RunningEmulator,
        http: aiohttp.ClientSession,
        store: Store,
        client: SalesforceClient,
        metrics: Metrics,
        inbox_limit: int,
    ) -> None:
        self.emulator, self.http, self.store = emulator, http, store
        self.client, self.metrics = client, metrics
        self._inbox_limit = inbox_limit
        self.hub = CometdHub(client, stall_margin_s=1.0, inbox_limit=inbox_limit)
        self._hubs = [self.hub]
        self.triggers: list[SharedTrigger] = []

    def restart_hub(self) -> CometdHub:
        self.hub = CometdHub(self.client, stall_margin_s=1.0, inbox_limit=self._inbox_limit)
        self._hubs.append(self.hub)
        return self.hub

    def make(self, name: str, **trigger: Any) -> SharedTrigger:
        fields: dict[str, Any] = {"name": name, "mode": "streaming", "start_from": "latest"}
        if trigger.get("object") is not None:
            fields["fields"] = ["Name"]
        settings = TriggerSettings.model_validate({**fields, **trigger})
        endpoint = EndpointSettings.model_validate(
            {"name": "hook", "url": "http://127.0.0.1:9/h", "secret": SECRET}
        )
        ingest = HeldIngest(self.store, [endpoint], self.metrics)
        context = SourceContext(
            client=self.client,
            ingest=ingest,
            store=self.store,
            metrics=self.metrics,
            cometd=self.hub,
        )
        status = TriggerStatus(name=name, mode="streaming", mode_reason="test")
        source = StreamingSource(settings, context, status, backoff_cap_s=0.2, stall_margin_s=1.0)
        made = SharedTrigger(source, ingest, self.metrics)
        self.triggers.append(made)
        return made

    async def started(self, *made: SharedTrigger) -> None:
        for each in made:
            each.start()
        for each in made:
            await each.connected()

    async def control(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = await control(self.http, self.emulator.url, path, body)
        assert answer.status == 200, answer.body
        assert isinstance(answer.body, dict)
        return answer.body

    async def stat(self, name: str) -> int:
        return int((await self.control("stats")).get(name, 0))

    async def live_clients(self) -> int:
        return int((await self.control("channels"))["clients"])

    async def close(self) -> None:
        for each in self.triggers:
            await each.stop()
        for hub in self._hubs:
            await hub.close()
        await self.store.close()


async def make_shared_rig(
    emulator: RunningEmulator, http: aiohttp.ClientSession, state_dir: Path, inbox_limit: int
) -> SharedRig:
    metrics = Metrics()
    store, client, _ = await wire(emulator.url, http, state_dir, metrics, None)
    return SharedRig(emulator, http, store, client, metrics, inbox_limit)
