"""What the resume and gap-fill hostile tests share: the emulator with short long-polls, a
real SQLite store, streaming sources started on it, and an ingest that injects a fault after
a chosen page of a back-fill."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sftriggerd.events.model import Event
from sftriggerd.sources.position import ReplayPosition, WatermarkPosition, decode
from sftriggerd.store.base import Store
from sftriggerd.store.records import Checkpoint, IngestResult, PoisonEvent
from sftriggerd_emulator.context import EmulatorSettings
from tests.integration.polling_rig import RecordingIngest
from tests.integration.streaming_rig import StreamingRig, make_streaming_rig
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import control

CHANNEL = "/data/AccountChangeEvent"


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    return EmulatorSettings(state_dir=tmp_path / "org", cometd_timeout_ms=1000)


class Harness:
    def __init__(
        self, emulator: RunningEmulator, http: aiohttp.ClientSession, tmp: Path, store: Store
    ) -> None:
        self.emulator, self.http, self.tmp, self.store = emulator, http, tmp, store

    async def start(self, batch_size: int | None = None, **trigger: Any) -> StreamingRig:
        rig = await make_streaming_rig(
            self.emulator.url, self.http, self.tmp, store=self.store, **trigger
        )
        if rig.source.backfill is not None:
            rig.source.backfill.batch_size = batch_size
        rig.start()
        return rig

    async def control(self, path: str, body: dict[str, Any]) -> None:
        answer = await control(self.http, self.emulator.url, path, body)
        assert answer.status == 200, answer.body

    async def expire_replay_ids(self) -> None:
        await self.control("retention", {"drop_before_replay_id": 10**12})

    async def position(self) -> ReplayPosition | WatermarkPosition:
        saved = await self.store.checkpoint("accounts")
        assert saved is not None
        return decode("accounts", saved.position, saved.event_time)


@pytest.fixture
def harness(
    emulator: RunningEmulator, http: aiohttp.ClientSession, tmp_path: Path, store: Store
) -> Harness:
    return Harness(emulator, http, tmp_path, store)


def ids(rig: StreamingRig) -> list[str | None]:
    return [record for _, record in rig.changes()]


class HookAfterPage(RecordingIngest):
    """Runs `hook` once `pages` fill pages are stored, so a fault lands on the next page."""

    def __init__(self, hook: Callable[[], Awaitable[None]], pages: int, *args: Any) -> None:
        super().__init__(*args)
        self._hook, self._pages = hook, pages
        self.fired = asyncio.Event()

    async def __call__(
        self,
        trigger: str,
        events: Sequence[Event],
        checkpoint: Checkpoint | None,
        poison: Sequence[PoisonEvent] = (),
    ) -> IngestResult:
        result = await super().__call__(trigger, events, checkpoint, poison)
        fill_page = any(event.source.get("gap_fill") for event in events)
        if fill_page and not self.fired.is_set():
            self._pages -= 1
            if self._pages == 0:
                await self._hook()
                self.fired.set()
        return result


def hook_after_page(
    rig: StreamingRig, pages: int, hook: Callable[[], Awaitable[None]]
) -> HookAfterPage:
    hooked = HookAfterPage(hook, pages, rig.store, rig.ingest._endpoints, rig.metrics)
    rig.ingest = hooked
    rig.source._ingest = hooked
    rig.source.positions._ingest = hooked
    assert rig.source.backfill is not None
    rig.source.backfill._ingest = hooked
    rig.source.backfill.batch_size = 2
    return hooked


def fail_fill_after(rig: StreamingRig, harness: Harness, pages: int) -> HookAfterPage:
    async def arm() -> None:
        # The test client tries a call 3 times: make every try of the next call fail.
        await harness.control("fail", {"surface": "rest", "count": 3, "status": 503})

    return hook_after_page(rig, pages, arm)
