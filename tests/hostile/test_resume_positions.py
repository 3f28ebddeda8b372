"""Every resume path of the streaming source keeps what was made while it was down: through
the real emulator over HTTP and a real SQLite store, with faults injected on the fill's pages,
restarts right after a fill, during a quiet period and in the middle of a fill."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from sftriggerd.events.payload import format_time
from sftriggerd.sources.auto import AutoSource
from sftriggerd.sources.context import SourceContext
from sftriggerd.sources.polling import PollingSource
from sftriggerd.sources.position import ReplayPosition, WatermarkPosition, encode
from sftriggerd.store.records import Checkpoint
from tests.hostile.resume_rig import (
    CHANNEL,
    Harness,
    emulator_settings,
    fail_fill_after,
    harness,
    hook_after_page,
    ids,
)
from tests.integration.streaming_rig import make_streaming_rig
from tests.support.sfclient import OrgClient

# The shared rig's fixtures (the emulator, store and http come from the support plugin).
__all__ = ["emulator_settings", "harness"]


async def test_a_quiet_channel_after_a_back_fill_resumes_from_the_time_it_reached(
    harness: Harness, org: OrgClient
) -> None:
    """The reproduction: back-fill, quiet, stop, 3 creates, start: all 3 arrive."""
    rig = await harness.start()
    await rig.connected()
    await org.create("Account", {"Name": "Seen"})
    await rig.wait_events(1)
    await rig.stop()
    missed = await org.create_many("Account", [{"Name": f"Missed {i}"} for i in range(2)])
    await harness.expire_replay_ids()
    filled = await harness.start()
    await filled.wait_events(2)
    await filled.connected()
    await filled.stop()  # quiet: no streamed event after the fill
    position = await harness.position()
    assert isinstance(position, ReplayPosition) and position.reached is not None
    while_down = await org.create_many("Account", [{"Name": f"Down {i}"} for i in range(3)])
    again = await harness.start()
    await again.wait_events(3)
    await again.stop()
    assert ids(filled) == missed
    assert ids(again) == while_down


async def test_a_new_trigger_stopped_before_its_first_event_loses_nothing(
    harness: Harness, org: OrgClient
) -> None:
    rig = await harness.start()
    await rig.connected()
    await rig.stop()
    while_down = await org.create_many("Account", [{"Name": f"Down {i}"} for i in range(3)])
    again = await harness.start()
    await again.wait_events(3)
    streamed = await org.create("Account", {"Name": "Live"})
    await again.wait_events(4)
    await again.stop()
    assert ids(again) == [*while_down, streamed]


async def test_a_hand_over_from_polling_then_a_quiet_restart_loses_nothing(
    harness: Harness, org: OrgClient
) -> None:
    polled = await org.create("Account", {"Name": "Polled"})
    now = datetime.now(UTC).replace(microsecond=0)
    watermark = WatermarkPosition(now, polled, now - timedelta(minutes=5))
    await harness.store.ingest("accounts", [], Checkpoint("accounts", encode(watermark)))
    rig = await harness.start(poll_lookback="0s")
    await rig.connected()
    await rig.stop()
    after = await harness.position()
    assert isinstance(after, ReplayPosition) and after.reached is not None
    while_down = await org.create_many("Account", [{"Name": f"Down {i}"} for i in range(3)])
    again = await harness.start()
    await again.wait_events(3)
    await again.stop()
    assert ids(again) == while_down


async def test_an_expired_replay_id_is_filled_from_the_time_reached_not_from_now(
    harness: Harness, org: OrgClient
) -> None:
    """Records made 20 minutes ago, while down since 30 minutes: a fill from "now" misses them."""
    reached = datetime.now(UTC) - timedelta(minutes=30)
    stored = ReplayPosition(CHANNEL, 1, reached)
    await harness.store.ingest("accounts", [], Checkpoint("accounts", encode(stored)))
    await harness.control("modstamp", {"freeze_at": format_time(reached + timedelta(minutes=10))})
    old = await org.create_many("Account", [{"Name": f"Old {i}"} for i in range(3)])
    await harness.control("modstamp", {"freeze_at": None})
    await harness.expire_replay_ids()
    rig = await harness.start()
    await rig.wait_events(3)
    await rig.stop()
    assert ids(rig) == old
    assert rig.faults("replay_expired") == 1


async def test_a_record_updated_while_down_is_back_filled_as_updated(
    harness: Harness, org: OrgClient
) -> None:
    rig = await harness.start()
    await rig.connected()
    record = await org.create("Account", {"Name": "Before"})
    await rig.wait_events(1)
    await rig.stop()
    # Stamps have whole seconds: the update is a change only if it lands in a later one.
    await asyncio.sleep(1.01 - datetime.now(UTC).microsecond / 1e6)
    await org.call("PATCH", f"sobjects/Account/{record}", json={"Name": "During the gap"})
    await harness.expire_replay_ids()
    again = await harness.start()
    await again.wait_events(1)
    await again.stop()
    assert again.changes() == [("updated", record)]
    assert again.ingest.new[0].record["Name"] == "During the gap"


@pytest.mark.parametrize("page", [1, 2])
async def test_a_rest_error_on_page_k_of_a_fill_loses_nothing(
    harness: Harness, org: OrgClient, page: int
) -> None:
    rig = await harness.start()
    await rig.connected()
    await org.create("Account", {"Name": "Seen"})
    await rig.wait_events(1)
    await rig.stop()
    missed = await org.create_many("Account", [{"Name": f"Missed {i}"} for i in range(6)])
    await harness.expire_replay_ids()
    again = await make_streaming_rig(
        harness.emulator.url, harness.http, harness.tmp, store=harness.store
    )
    fail_fill_after(again, harness, page)
    again.start()
    await again.wait_events(6, timeout_s=15)
    assert sorted(ids(again)) == sorted(missed)  # type: ignore[type-var]
    assert again.faults("error") >= 1  # the fill failed once and was done again
    await again.stop()
    # The next fault after the recovery: restart during a quiet period, then creates.
    while_down = await org.create_many("Account", [{"Name": f"Down {i}"} for i in range(2)])
    last = await harness.start()
    await last.wait_events(2)
    await last.stop()
    assert ids(last) == while_down


async def test_a_restart_in_the_middle_of_a_fill_fills_the_whole_gap(
    harness: Harness, org: OrgClient
) -> None:
    rig = await harness.start()
    await rig.connected()
    await org.create("Account", {"Name": "Seen"})
    await rig.wait_events(1)
    await rig.stop()
    before = await harness.position()
    missed = await org.create_many("Account", [{"Name": f"Missed {i}"} for i in range(6)])
    await harness.expire_replay_ids()
    cut = await make_streaming_rig(
        harness.emulator.url, harness.http, harness.tmp, store=harness.store
    )

    async def hold_the_next_page() -> None:
        await harness.control("delay", {"surface": "rest", "seconds": 1, "count": 1})

    hooked = hook_after_page(cut, 1, hold_the_next_page)
    cut.start()
    await asyncio.wait_for(hooked.fired.wait(), 10)
    assert cut.task is not None
    cut.task.cancel()  # killed mid-fill: the pages stored so far did not move the position
    with pytest.raises(asyncio.CancelledError):
        await cut.task
    assert await harness.position() == before
    again = await harness.start(batch_size=2)
    await again.wait_events(4, timeout_s=15)
    await again.stop()
    assert sorted([*ids(cut), *ids(again)]) == sorted(missed)  # type: ignore[type-var]
    assert 0 < len(ids(cut)) < len(missed)


async def test_an_unreadable_stored_position_is_reported_and_the_source_keeps_trying(
    harness: Harness,
) -> None:
    garbage = Checkpoint("accounts", {"replay_id": "not a number", "channel": CHANNEL})
    await harness.store.ingest("accounts", [], garbage)
    rig = await harness.start()
    async with asyncio.timeout(10):
        while rig.faults("error") < 2:  # failed, backed off, and tried again
            await asyncio.sleep(0.02)
    assert rig.task is not None and not rig.task.done()
    assert "'accounts'" in (rig.source.status.last_error or "")
    assert "not a number" in (rig.source.status.last_error or "")
    await rig.stop()


async def test_auto_mode_goes_back_to_polling_when_the_retry_finds_its_watermark(
    harness: Harness, org: OrgClient
) -> None:
    """Polling ran (its watermark is stored); the retried subscription still fails: the
    hand-over must read that as "unavailable" and poll again, not retry streaming forever."""
    rig = await make_streaming_rig(
        harness.emulator.url,
        harness.http,
        harness.tmp,
        store=harness.store,
        mode="auto",
        channel="/topic/NotDefined",
        poll_interval="100ms",
        poll_delay="0s",
        start_from="earliest",
    )
    context = SourceContext(
        client=rig.client, ingest=rig.ingest, store=rig.store, metrics=rig.metrics
    )
    polling = PollingSource(rig.source.trigger, context, rig.source.status)
    auto = AutoSource(rig.source, polling, rig.source.status, timedelta(milliseconds=300))
    stopping = asyncio.Event()
    task = asyncio.create_task(auto.run(stopping))
    first = await org.create("Account", {"Name": "Polled first"})
    await rig.wait_events(1)
    assert isinstance(await harness.position(), WatermarkPosition)
    async with asyncio.timeout(10):  # streaming was tried again, after polling stored
        while harness.emulator.ctx.stats["subscribes"] < 2:
            await asyncio.sleep(0.02)
    second = await org.create("Account", {"Name": "Polled after the retry"})
    await rig.wait_events(2)
    stopping.set()
    await asyncio.wait_for(task, 5)
    assert rig.changes() == [("created", first), ("created", second)]
    assert rig.faults("error") == 0


async def test_a_local_clock_ahead_of_salesforce_drops_nothing(
    harness: Harness, org: OrgClient
) -> None:
    """What is kept is decided on Salesforce's stamps, not on this host's clock."""

    def ahead() -> datetime:
        return datetime.now(UTC) + timedelta(seconds=30)

    rig = await make_streaming_rig(
        harness.emulator.url, harness.http, harness.tmp, store=harness.store
    )
    rig.source._clock = ahead
    rig.source.positions._clock = ahead
    rig.start()
    await rig.connected()
    first = await org.create("Account", {"Name": "Right after the start"})
    await rig.wait_events(1)
    await rig.stop()
    # The time reached never goes back: the (skewed) start stays, the older stamp does not
    # replace it.
    position = await harness.position()
    assert isinstance(position, ReplayPosition) and position.reached is not None
    assert position.reached > rig.ingest.new[0].occurred_at + timedelta(seconds=20)
    while_down = await org.create_many("Account", [{"Name": f"Down {i}"} for i in range(2)])
    again = await harness.start()
    await again.wait_events(2)
    await again.stop()
    assert ids(rig) == [first]
    assert ids(again) == while_down
