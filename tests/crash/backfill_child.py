"""The process the back-fill crash test kills: the real streaming source of an `Account`
trigger against the test's emulator, on one SQLite store, filling its gap two rows a page.

Stdout is a protocol for the test, one line each:

    page        one page of a back-fill stored (without moving the checkpoint)
    streamed    streamed events stored with their replay id
    connected   the fill is done and the subscription is live

Run as `python -m tests.crash.backfill_child --store ... --emulator ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from sftriggerd.events.model import Event
from sftriggerd.logs import configure_logging
from sftriggerd.store.records import Checkpoint, IngestResult, PoisonEvent
from sftriggerd.store.sqlite import SqliteStore
from tests.integration.polling_rig import RecordingIngest
from tests.integration.streaming_rig import make_streaming_rig


class ReportingIngest(RecordingIngest):
    async def __call__(
        self,
        trigger: str,
        events: Sequence[Event],
        checkpoint: Checkpoint | None,
        poison: Sequence[PoisonEvent] = (),
    ) -> IngestResult:
        result = await super().__call__(trigger, events, checkpoint, poison)
        if checkpoint is None:
            print("page", flush=True)
        elif events:
            print("streamed", flush=True)
        return result


async def run(store_path: Path, emulator_url: str) -> None:
    store = SqliteStore(store_path)
    await store.open()
    async with aiohttp.ClientSession() as http:
        rig = await make_streaming_rig(emulator_url, http, store_path.parent, store=store)
        reporting = ReportingIngest(store, rig.ingest._endpoints, rig.metrics)
        rig.source._ingest = reporting
        rig.source.positions._ingest = reporting
        assert rig.source.backfill is not None
        rig.source.backfill._ingest = reporting
        rig.source.backfill.batch_size = 2
        rig.start()
        await rig.connected(timeout_s=60)
        print("connected", flush=True)
        await asyncio.Event().wait()  # until killed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--emulator", required=True)
    args = parser.parse_args()
    configure_logging("warning", "json", stream=sys.stderr)
    asyncio.run(run(args.store, args.emulator))


if __name__ == "__main__":
    main()
