"""CDC gap notices through the real emulator and a real SQLite store: each change type
comes out as its change, a deleted record is read with queryAll, and an overflow fill that
fails on a later page loses nothing."""

from __future__ import annotations

import pytest

from tests.hostile.resume_rig import (
    CHANNEL,
    Harness,
    emulator_settings,
    fail_fill_after,
    harness,
    ids,
)
from tests.integration.streaming_rig import make_streaming_rig
from tests.support.sfclient import OrgClient

# The shared rig's fixtures (the emulator, store and http come from the support plugin).
__all__ = ["emulator_settings", "harness"]


@pytest.mark.parametrize(
    ("change_type", "change"),
    [("GAP_CREATE", "created"), ("GAP_UPDATE", "updated"), ("GAP_UNDELETE", "undeleted")],
)
async def test_gap_notices_keep_their_change_type(
    harness: Harness, org: OrgClient, change_type: str, change: str
) -> None:
    rig = await harness.start(events=["created", "updated", "deleted", "undeleted"])
    await rig.connected()
    record = await org.create("Account", {"Name": "Gappy"})
    await rig.wait_events(1)
    gap = {"object": "Account", "record_ids": [record], "change_type": change_type}
    await harness.control("gap", gap)
    await rig.wait_events(2)
    await rig.stop()
    reread = rig.ingest.new[1]
    assert (reread.change, reread.record_id) == (change, record)
    assert reread.source.get("gap_fill") is True


async def test_a_gap_delete_reads_the_deleted_record_with_query_all(
    harness: Harness, org: OrgClient
) -> None:
    rig = await harness.start(events=["created", "deleted"])
    await rig.connected()
    record = await org.create("Account", {"Name": "Doomed"})
    await rig.wait_events(1)
    await harness.control("cometd/starve", {"channel": CHANNEL, "enabled": True})
    await org.call("DELETE", f"sobjects/Account/{record}")
    await harness.control("retention", {"drop_before_replay_id": 10**12})
    await harness.control("cometd/starve", {"channel": CHANNEL, "enabled": False})
    gap = {"object": "Account", "record_ids": [record], "change_type": "GAP_DELETE"}
    await harness.control("gap", gap)
    await rig.wait_events(2)
    await rig.stop()
    deleted = rig.ingest.new[1]
    assert (deleted.change, deleted.record_id) == ("deleted", record)
    assert deleted.record.get("IsDeleted") is True and deleted.record["Name"] == "Doomed"


async def test_a_gap_overflow_fill_that_fails_on_a_later_page_loses_nothing(
    harness: Harness, org: OrgClient
) -> None:
    rig = await make_streaming_rig(
        harness.emulator.url, harness.http, harness.tmp, store=harness.store
    )
    fail_fill_after(rig, harness, 1)
    rig.start()
    await rig.connected()
    await org.create("Account", {"Name": "Seen"})
    await rig.wait_events(1)
    # Changes whose events never reach the bus, then the notice that says so.
    await harness.control("cometd/starve", {"channel": CHANNEL, "enabled": True})
    missed = await org.create_many("Account", [{"Name": f"Missed {i}"} for i in range(6)])
    await harness.expire_replay_ids()
    await harness.control("cometd/starve", {"channel": CHANNEL, "enabled": False})
    await harness.control("gap", {"object": "Account", "change_type": "GAP_OVERFLOW"})
    await rig.wait_events(7, timeout_s=15)
    await rig.stop()
    assert sorted(ids(rig)[1:]) == sorted(missed)  # type: ignore[type-var]
    assert rig.faults("gap_overflow") == 1 and rig.faults("error") == 1


async def test_a_gap_delete_of_a_record_gone_for_good_still_reports_its_delete(
    harness: Harness, org: OrgClient
) -> None:
    rig = await harness.start(events=["created", "deleted"])
    await rig.connected()
    record = await org.create("Account", {"Name": "Seen"})
    await rig.wait_events(1)
    purged = "001EM0000PURGEDAAA"  # no longer in the org, not even with queryAll
    gap = {"object": "Account", "record_ids": [purged], "change_type": "GAP_DELETE"}
    await harness.control("gap", gap)
    await rig.wait_events(2)
    await rig.stop()
    assert rig.changes() == [("created", record), ("deleted", purged)]
    deleted = rig.ingest.new[1]
    assert deleted.record["Id"] == purged and deleted.source.get("gap_fill") is True


async def test_a_gap_notice_naming_no_readable_record_id_is_filled_by_time(
    harness: Harness, org: OrgClient
) -> None:
    rig = await harness.start()
    await rig.connected()
    await org.create("Account", {"Name": "Seen"})
    await rig.wait_events(1)
    await harness.control("cometd/starve", {"channel": CHANNEL, "enabled": True})
    missed = await org.create("Account", {"Name": "Missed"})
    await harness.expire_replay_ids()
    await harness.control("cometd/starve", {"channel": CHANNEL, "enabled": False})
    hostile = ["001'; DELETE", "x" * 5000, "001EM\x00000001YAA"]
    gap = {"object": "Account", "record_ids": hostile, "change_type": "GAP_UPDATE"}
    await harness.control("gap", gap)
    await rig.wait_events(2)
    after = await org.create("Account", {"Name": "After"})
    await rig.wait_events(3)
    await rig.stop()
    assert ids(rig)[1:] == [missed, after]
    assert rig.faults("error") == 0
