"""Hostile review: a streamed message's own time must not carry the stored position past what
is actually stored. Real emulator over HTTP, real SQLite store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sftriggerd.sources.position import ReplayPosition
from tests.hostile.resume_rig import CHANNEL, Harness, emulator_settings, harness, ids
from tests.salesforce_messages import cdc
from tests.support.sfclient import OrgClient

__all__ = ["emulator_settings", "harness"]

FAR_FUTURE_MS = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp() * 1000)


async def test_a_future_commit_time_does_not_skip_what_a_back_fill_must_read(
    harness: Harness, org: OrgClient
) -> None:
    """A change event stamped in 2100 (a broken or hostile header) is delivered, but the time
    reached stays at most "now": after the replay id expires, the back-fill still reads what
    was made while the daemon was down."""
    rig = await harness.start()
    await rig.connected()
    seen = await org.create("Account", {"Name": "Seen"})
    await rig.wait_events(1)
    data = cdc("UPDATE", [seen], Name="From the future")["data"]
    data["payload"]["ChangeEventHeader"]["commitTimestamp"] = FAR_FUTURE_MS
    await harness.control("publish", {"channel": CHANNEL, "data": data})
    await rig.wait_events(2)
    await rig.stop()
    position = await harness.position()
    assert isinstance(position, ReplayPosition) and position.reached is not None
    assert position.reached <= datetime.now(UTC)
    while_down = await org.create_many("Account", [{"Name": f"Down {i}"} for i in range(3)])
    await harness.expire_replay_ids()
    again = await harness.start()
    await again.connected()
    live = await org.create("Account", {"Name": "Live"})
    async with asyncio.timeout(10):
        while live not in ids(again):
            await asyncio.sleep(0.02)
    await again.stop()
    assert set(while_down) <= set(ids(again))


async def test_an_update_in_the_same_second_as_a_streamed_change_survives_a_back_fill(
    harness: Harness, org: OrgClient
) -> None:
    """Salesforce stamps SystemModstamp to the second, change events to the millisecond. A
    record streamed as created, then updated within the same second while the daemon was
    down (its replay id expired meanwhile): the back-fill must not take the update for the
    change already stored. (Frozen stamps make "within the same second" deterministic.)"""
    rig = await harness.start()
    await rig.connected()
    # Frozen at the second the create commits in (early in a fresh second, so the create
    # lands in it), as Salesforce would stamp an update made within that second.
    now = datetime.now(UTC)
    await asyncio.sleep(1 - now.microsecond / 1e6 + 0.01)
    frozen = datetime.now(UTC).replace(microsecond=0)
    await harness.control("modstamp", {"freeze_at": frozen.isoformat().replace("+00:00", "Z")})
    record = await org.create("Account", {"Name": "First"})
    await rig.wait_events(1)
    await rig.stop()
    answer = await org.call("PATCH", f"sobjects/Account/{record}", json={"Name": "Second"})
    assert answer.status == 204, answer.body
    await harness.control("modstamp", {"freeze_at": None})
    await harness.expire_replay_ids()
    again = await harness.start()
    await again.connected()
    live = await org.create("Account", {"Name": "Live"})
    # The live change can arrive while the back-fill is still reading: wait for both.
    async with asyncio.timeout(10):
        while live not in ids(again) or record not in ids(again):
            await asyncio.sleep(0.02)
    await again.stop()
    updates = [e for e in again.ingest.new if e.record_id == record]
    assert [e.change for e in updates] == ["updated"]
    assert updates[0].record["Name"] == "Second"


async def test_a_gap_overflow_stamped_in_the_future_still_fills_the_gap(
    harness: Harness, org: OrgClient
) -> None:
    """A GAP_OVERFLOW notice whose commit time lies in 2100: the fill starts no later than
    now (minus the overlap), so the changes it announces are read."""
    rig = await harness.start()
    await rig.connected()
    await org.create("Account", {"Name": "Seen"})
    await rig.wait_events(1)
    await harness.control("cometd/starve", {"channel": CHANNEL, "enabled": True})
    missed = await org.create("Account", {"Name": "Missed"})
    await harness.expire_replay_ids()
    await harness.control("cometd/starve", {"channel": CHANNEL, "enabled": False})
    data = cdc("GAP_OVERFLOW", [])["data"]
    data["payload"]["ChangeEventHeader"]["commitTimestamp"] = FAR_FUTURE_MS
    await harness.control("publish", {"channel": CHANNEL, "data": data})
    after = await org.create("Account", {"Name": "After"})
    async with asyncio.timeout(10):
        while after not in ids(rig):
            await asyncio.sleep(0.02)
    await rig.stop()
    assert missed in ids(rig)
