"""The streaming source's stored position, over a real SQLite store and the emulator: what
is read on resume, written with each batch, and saved after a back-fill."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sftriggerd.sources.position import (
    RESUME_OVERLAP,
    PositionError,
    ReplayPosition,
    StreamResume,
    WatermarkPosition,
    decode,
    encode,
)
from sftriggerd.sources.stream_positions import StreamPositions
from sftriggerd.store.records import Checkpoint
from tests.hostile.resume_rig import CHANNEL, Harness, emulator_settings, harness
from tests.integration.streaming_rig import StreamingRig, make_streaming_rig
from tests.support.sfclient import OrgClient

# The fixtures used here, from the emulator's tests and the shared rig.
__all__ = ["emulator_settings", "harness"]

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


async def test_positions_are_read_and_written_per_trigger(harness: Harness) -> None:
    other = Checkpoint(trigger="contacts", position={"replay_id": 99, "channel": CHANNEL})
    await harness.store.ingest("contacts", [], other)
    _, positions = await rig_positions(harness)
    assert await positions.load() is None  # another trigger's position is not ours
    await positions.save_start(T)
    assert await stored(harness) == ReplayPosition(CHANNEL, None, T)


async def test_an_old_position_takes_its_time_from_the_checkpoint_and_keeps_a_later_one(
    harness: Harness,
) -> None:
    old = Checkpoint(trigger="accounts", position={"replay_id": 5}, event_time=T)
    await harness.store.ingest("accounts", [], old)
    _, positions = await rig_positions(harness)
    assert await positions.load() == ReplayPosition(CHANNEL, 5, T)
    assert positions.reached == T
    positions.checkpoint(6, T + 60 * S)
    await positions.load()
    assert positions.reached == T + 60 * S


async def test_after_polling_the_stream_resumes_the_look_back_before_the_watermark(
    harness: Harness,
) -> None:
    polled = Checkpoint(trigger="accounts", position=encode(WatermarkPosition(T, "001A")))
    await harness.store.ingest("accounts", [], polled)
    rig, positions = await rig_positions(harness)
    lookback = rig.source.trigger.poll_lookback
    assert await positions.resume() == StreamResume(None, T - lookback)


async def test_with_nothing_stored_an_expired_fill_starts_from_now(harness: Harness) -> None:
    _, positions = await rig_positions(harness)
    before = datetime.now(UTC)
    start = await positions.expired_fill_from()
    assert before - RESUME_OVERLAP <= start <= datetime.now(UTC) - RESUME_OVERLAP


async def test_a_fill_never_moves_the_time_reached_back(harness: Harness) -> None:
    rig, positions = await rig_positions(harness)
    assert rig.source.backfill is not None
    ahead = datetime.now(UTC) + 3600 * S  # stored by a host whose clock ran ahead
    saved_ahead = Checkpoint(trigger="accounts", position=encode(ReplayPosition(CHANNEL, 3, ahead)))
    await harness.store.ingest("accounts", [], saved_ahead)
    await positions.load()
    await positions.fill(rig.source.backfill, ahead - 7200 * S, save=False)
    assert positions.reached == ahead
    await positions.fill(rig.source.backfill, ahead - 7200 * S, save=True)
    assert positions.reached == ahead
    saved = await stored(harness)
    assert isinstance(saved, ReplayPosition) and saved.reached == ahead


async def test_a_saved_fill_reaches_its_own_end(harness: Harness) -> None:
    rig, positions = await rig_positions(harness)
    assert rig.source.backfill is not None
    before = datetime.now(UTC)
    await positions.fill(rig.source.backfill, before - 60 * S, save=True)
    saved = await stored(harness)
    assert isinstance(saved, ReplayPosition) and saved.reached is not None
    assert saved.reached >= before


async def test_an_unreadable_stored_position_names_the_trigger(harness: Harness) -> None:
    broken = Checkpoint(trigger="accounts", position={"replay_id": 1.5})
    await harness.store.ingest("accounts", [], broken)
    _, positions = await rig_positions(harness)
    with pytest.raises(PositionError) as raised:
        await positions.load()
    assert raised.value.trigger == "accounts"
