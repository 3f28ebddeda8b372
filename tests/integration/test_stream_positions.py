"""The streaming source's stored position, over a real SQLite store and the emulator: what
is read on resume, written with each batch, and saved after a back-fill."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sftriggerd.sources.position import (
    RESUME_OVERLAP,
    ReplayPosition,
    StreamResume,
    decode,
)
from sftriggerd.sources.stream_positions import StreamPositions
from tests.emulator.conftest import emulator, http, org
from tests.emulator.sfclient import OrgClient
from tests.hostile.resume_rig import CHANNEL, Harness, emulator_settings, harness, store
from tests.integration.streaming_rig import StreamingRig, make_streaming_rig

# The fixtures used here, from the emulator's tests and the shared rig.
__all__ = ["emulator", "emulator_settings", "harness", "http", "org", "store"]

T = datetime(2026, 11, 28, 10, 15, 2, tzinfo=UTC)
S = timedelta(seconds=1)


async def rig_positions(harness: Harness) -> tuple[StreamingRig, StreamPositions]:
    rig = await make_streaming_rig(
        harness.emulator.url, harness.http, harness.tmp, store=harness.store
    )
    return rig, rig.source.positions


async def stored(harness: Harness) -> object:
    saved = await harness.store.checkpoint("accounts")
    assert saved is not None
    return decode("accounts", saved.position, saved.event_time, CHANNEL)


async def test_a_start_is_saved_once_and_read_back(harness: Harness) -> None:
    _, positions = await rig_positions(harness)
    assert await positions.load() is None and await positions.resume() is None
    await positions.save_start(T)
    await positions.save_start(T + 60 * S)  # a second start must not move the first
    assert await stored(harness) == ReplayPosition(CHANNEL, None, T)
    assert await positions.resume() == StreamResume(None, T - RESUME_OVERLAP)
    assert await positions.expired_fill_from() == T - RESUME_OVERLAP


async def test_a_batch_checkpoint_keeps_the_newest_time_reached(harness: Harness) -> None:
    _, positions = await rig_positions(harness)
    first = positions.checkpoint(7, T)
    assert (first.trigger, first.event_time) == ("accounts", T)
    assert decode("accounts", first.position, None, "") == ReplayPosition(CHANNEL, 7, T)
    older = positions.checkpoint(8, T - 5 * S)  # a batch of older changes: reached stays
    assert decode("accounts", older.position, None, "") == ReplayPosition(CHANNEL, 8, T)
    assert positions.checkpoint(None, None).position["reached"] == first.position["reached"]


async def test_a_stored_time_reached_is_loaded_and_kept_later(harness: Harness) -> None:
    _, positions = await rig_positions(harness)
    await harness.store.ingest("accounts", [], positions.checkpoint(b"\x01\x02", T))
    _, loaded = await rig_positions(harness)  # a restart: a new source on the same store
    assert await loaded.load() == ReplayPosition(CHANNEL, b"\x01\x02", T)
    assert loaded.reached == T
    # An opaque replay id means nothing to CometD: resume by time.
    assert await loaded.resume() == StreamResume(None, T - RESUME_OVERLAP)
    assert loaded.checkpoint(9, T - S).event_time == T - S and loaded.reached == T


async def test_a_saved_fill_stores_its_end_and_an_unsaved_one_only_remembers_it(
    harness: Harness, org: OrgClient
) -> None:
    rig, positions = await rig_positions(harness)
    assert rig.source.backfill is not None
    await org.create("Account", {"Name": "Filled"})
    before = datetime.now(UTC)
    assert await positions.fill(rig.source.backfill, before - 3600 * S, save=False) == 1
    assert positions.reached is not None and positions.reached >= before
    assert await harness.store.checkpoint("accounts") is None
    again = await positions.fill(rig.source.backfill, before - 3600 * S, save=True, replay=4)
    assert again == 0  # the same change, already stored
    position = await stored(harness)
    assert isinstance(position, ReplayPosition) and position.replay_id == 4
    assert position.reached == positions.reached and position.channel == CHANNEL
