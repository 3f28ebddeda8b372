"""The polling source's position against the emulator over HTTP and a real SQLite store: the
take-over from a streaming position, the look-back that never moves the watermark, and the
window that ends `poll_delay` before now."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from sftriggerd.events.payload import format_time
from sftriggerd.sources.position import EPOCH, ReplayPosition, WatermarkPosition, decode, encode
from sftriggerd.sources.watermark import Watermark
from sftriggerd.store.records import Checkpoint
from tests.integration.polling_rig import PollingRig, make_rig
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient, control

CHANNEL = "/data/AccountChangeEvent"


async def freeze(http: aiohttp.ClientSession, url: str, at: datetime | None) -> None:
    body = {"freeze_at": format_time(at) if at else None}
    answer = await control(http, url, "modstamp", body)
    assert answer.status == 200, answer.body


async def stored(rig: PollingRig) -> WatermarkPosition:
    saved = await rig.store.checkpoint("accounts")
    assert saved is not None
    position = decode("accounts", saved.position, saved.event_time)
    assert isinstance(position, WatermarkPosition)
    return position


async def test_polling_takes_over_from_the_time_a_stream_reached(
    emulator: RunningEmulator, http: aiohttp.ClientSession, org: OrgClient, tmp_path: Path
) -> None:
    reached = (datetime.now(UTC) - timedelta(minutes=20)).replace(microsecond=0)
    await freeze(http, emulator.url, reached - timedelta(hours=1))
    await org.create("Account", {"Name": "Streamed long ago"})
    await freeze(http, emulator.url, reached + timedelta(minutes=1))
    after = await org.create_many("Account", [{"Name": f"After {i}"} for i in range(3)])
    await freeze(http, emulator.url, None)
    rig = await make_rig(emulator.url, http, tmp_path, start_from="earliest")
    streamed = ReplayPosition(CHANNEL, 8451, reached)
    await rig.store.ingest("accounts", [], Checkpoint("accounts", encode(streamed)))
    await rig.source.poll_once()
    assert rig.changes() == [("created", record) for record in after]
    position = await stored(rig)
    assert position.floor == reached - timedelta(minutes=5)  # the look-back, not earlier
    assert (position.time, position.record_id) == (reached + timedelta(minutes=1), after[-1])
    await rig.store.close()


async def test_look_back_pages_never_move_the_watermark(
    emulator: RunningEmulator, http: aiohttp.ClientSession, org: OrgClient, tmp_path: Path
) -> None:
    base = (datetime.now(UTC) - timedelta(minutes=2)).replace(microsecond=0)
    await freeze(http, emulator.url, base)
    older = await org.create("Account", {"Name": "Older"})
    await freeze(http, emulator.url, base + timedelta(seconds=10))
    newest = await org.create("Account", {"Name": "Newest"})
    await freeze(http, emulator.url, None)
    rig = await make_rig(emulator.url, http, tmp_path, batch_size=1, events=["created", "updated"])
    await rig.source.poll_once()
    assert rig.changes() == [("created", older), ("created", newest)]
    mark = Watermark(base + timedelta(seconds=10), newest)
    assert rig.source.watermark == mark
    # The watermark's own row leaves the query (deleted, and deletes are not asked for):
    # the look-back now ends on an older row, which must not pull the watermark back.
    await org.call("DELETE", f"sobjects/Account/{newest}")
    await rig.source.poll_once()
    assert rig.source.watermark == mark
    position = await stored(rig)
    assert (position.time, position.record_id) == (mark.time, mark.record_id)
    await rig.store.close()


async def test_the_window_ends_poll_delay_before_now(
    emulator: RunningEmulator, http: aiohttp.ClientSession, org: OrgClient, tmp_path: Path
) -> None:
    await freeze(http, emulator.url, datetime.now(UTC) - timedelta(minutes=1))
    settled = await org.create("Account", {"Name": "Settled"})
    await freeze(http, emulator.url, None)
    fresh = await org.create("Account", {"Name": "Fresh"})
    rig = await make_rig(emulator.url, http, tmp_path, poll_delay="30s")
    await rig.source.poll_once()
    # The positive signal first: the settled record was read in this very cycle.
    assert rig.changes() == [("created", settled)]
    assert fresh not in [record for _, record in rig.changes()]
    position = await stored(rig)
    assert position.time <= datetime.now(UTC) - timedelta(seconds=29)
    assert position.floor == EPOCH
    rig.now_offset = timedelta(seconds=31)  # the delay has passed: now it is read
    await rig.source.poll_once()
    assert rig.changes() == [("created", settled), ("created", fresh)]
    await rig.store.close()


async def test_an_unreadable_stored_position_fails_the_cycle_with_the_trigger_named(
    emulator: RunningEmulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    rig = await make_rig(emulator.url, http, tmp_path)
    garbage = Checkpoint("accounts", {"watermark": "the day before yesterday", "id": ""})
    await rig.store.ingest("accounts", [], garbage)
    stopping = asyncio.Event()
    runner = asyncio.create_task(rig.source.run(stopping))
    async with asyncio.timeout(5):
        while rig.source.status.state != "failed":
            await asyncio.sleep(0.02)
    assert not runner.done()  # the poller goes on trying; it does not end the part
    assert "'accounts'" in (rig.source.status.last_error or "")
    assert "the day before yesterday" in (rig.source.status.last_error or "")
    stopping.set()
    await asyncio.wait_for(runner, 5)
    await rig.store.close()
