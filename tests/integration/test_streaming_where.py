"""A trigger's `where` on streamed changes, against the emulator's CDC channel over HTTP:
only matching changes are stored, a CDC update lacking the condition's fields is decided
after one record read, and the position moves past the changes left out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from sftriggerd_emulator.context import EmulatorSettings
from tests.integration.streaming_rig import StreamingRig, make_streaming_rig
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient, control


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    return EmulatorSettings(state_dir=tmp_path / "org", cometd_timeout_ms=1000)


@pytest.fixture
async def rig(
    emulator: RunningEmulator, http: aiohttp.ClientSession, tmp_path: Path
) -> AsyncIterator[StreamingRig]:
    made = await make_streaming_rig(
        emulator.url, http, tmp_path, mode="auto", where="Industry = 'Energy'"
    )
    made.start()
    await made.connected()
    yield made
    await made.stop()
    await made.store.close()


def record_reads(rig: StreamingRig) -> float:
    value = rig.metrics.registry.get_sample_value(
        "sftriggerd_salesforce_api_calls_total", {"kind": "sobject"}
    )
    return value or 0.0


async def replay_id(rig: StreamingRig) -> int:
    saved = await rig.store.checkpoint(rig.source.trigger.name)
    assert saved is not None
    return int(saved.position["replay_id"])


async def checkpoint_passes(rig: StreamingRig, replay: int, timeout_s: float = 10) -> None:
    async with asyncio.timeout(timeout_s):
        while await replay_id(rig) <= replay:
            await asyncio.sleep(0.02)


async def test_only_matching_changes_are_stored(rig: StreamingRig, org: OrgClient) -> None:
    energy = await org.create("Account", {"Name": "Volt", "Industry": "Energy"})
    retail = await org.create("Account", {"Name": "Shop", "Industry": "Retail"})
    await rig.wait_events(1)
    await checkpoint_passes(rig, rig.ingest.new[0].source["replay_id"])  # the Retail create
    assert rig.changes() == [("created", energy)]
    assert record_reads(rig) == 0  # a CDC create carries every non-null field

    await org.call("PATCH", f"sobjects/Account/{energy}", json={"Name": "Volt 2"})
    await rig.wait_events(2)
    renamed = rig.ingest.new[1]
    assert (renamed.change, renamed.record_id) == ("updated", energy)
    assert "Industry" not in renamed.record  # decided by reading the record, not the event
    assert record_reads(rig) == 1

    reached = await replay_id(rig)
    await org.call("PATCH", f"sobjects/Account/{retail}", json={"Name": "Shop 2"})
    await org.call("PATCH", f"sobjects/Account/{energy}", json={"Industry": "Retail"})
    # The positive signal: the position moves past both updates, and nothing is stored.
    await checkpoint_passes(rig, reached + 1)
    assert len(rig.ingest.new) == 2
    assert record_reads(rig) == 2  # the Industry change carried its own value

    # A delete carries no values to test: it passes unfiltered.
    await org.call("DELETE", f"sobjects/Account/{retail}")
    await rig.wait_events(3)
    assert rig.changes()[-1] == ("deleted", retail)


async def test_an_update_carrying_the_field_needs_no_read(
    rig: StreamingRig, org: OrgClient
) -> None:
    """The filter costs a read only where the condition needs a field the event lacks."""
    record = await org.create("Account", {"Name": "Volt", "Industry": "Energy"})
    await org.call("PATCH", f"sobjects/Account/{record}", json={"Industry": "Energy "})
    await org.call("PATCH", f"sobjects/Account/{record}", json={"Industry": "Energy"})
    await rig.wait_events(2)
    assert rig.changes() == [("created", record), ("updated", record)]
    assert record_reads(rig) == 0


async def test_platform_events_are_tested_against_their_payload(
    emulator: RunningEmulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    rig = await make_streaming_rig(
        emulator.url,
        http,
        tmp_path,
        name="orders",
        object=None,
        channel="/event/Order_Placed__e",
        where="Amount__c >= 100",
    )
    rig.start()
    await rig.connected()
    for amount in (12, 150):
        answer = await control(
            http, emulator.url, "events/Order_Placed__e", {"payload": {"Amount__c": amount}}
        )
        assert answer.status == 200, answer.body
    await rig.wait_events(1)
    await checkpoint_passes(rig, 0)
    assert [event.record["Amount__c"] for event in rig.ingest.new] == [150]
    assert record_reads(rig) == 0
    await rig.stop()
    await rig.store.close()


async def test_pushtopic_changes_read_the_fields_the_topic_leaves_out(
    emulator: RunningEmulator, http: aiohttp.ClientSession, org: OrgClient, tmp_path: Path
) -> None:
    topic = {
        "Name": "AccountNames",
        "Query": "SELECT Id, Name FROM Account",
        "ApiVersion": 60.0,
        "NotifyForOperationCreate": True,
        "NotifyForOperationUpdate": True,
        "NotifyForFields": "Referenced",
    }
    await org.create("PushTopic", topic)
    rig = await make_streaming_rig(
        emulator.url, http, tmp_path, channel="/topic/AccountNames", where="Industry = 'Energy'"
    )
    rig.start()
    await rig.connected()
    await org.create("Account", {"Name": "Shop", "Industry": "Retail"})
    energy = await org.create("Account", {"Name": "Volt", "Industry": "Energy"})
    await rig.wait_events(1)
    assert rig.changes() == [("created", energy)]
    assert "Industry" not in rig.ingest.new[0].record  # read back, not carried
    assert record_reads(rig) == 2
    await rig.stop()
    await rig.store.close()


async def test_a_gap_notice_rereads_only_the_records_that_match(
    rig: StreamingRig, org: OrgClient, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    retail = await org.create("Account", {"Name": "Shop", "Industry": "Retail"})
    energy = await org.create("Account", {"Name": "Volt", "Industry": "Energy"})
    await rig.wait_events(1)
    notice = {"object": "Account", "record_ids": [retail, energy], "change_type": "GAP_UPDATE"}
    answer = await control(http, emulator.url, "gap", notice)
    assert answer.status == 200, answer.body
    await rig.wait_events(2)
    reread = rig.ingest.new[1]
    assert (reread.change, reread.record_id, reread.source.get("gap_fill")) == (
        "updated",
        energy,
        True,
    )
    assert rig.changes() == [("created", energy), ("updated", energy)]


async def test_a_field_set_to_null_is_known_from_the_event(
    rig: StreamingRig, org: OrgClient
) -> None:
    energy = await org.create("Account", {"Name": "Volt", "Industry": "Energy"})
    await rig.wait_events(1)
    await org.call("PATCH", f"sobjects/Account/{energy}", json={"Industry": None})
    other = await org.create("Account", {"Name": "Watt", "Industry": "Energy"})
    await rig.wait_events(2)  # the later create arrives: the nulling update was read before it
    assert rig.changes() == [("created", energy), ("created", other)]
    assert record_reads(rig) == 0  # changedFields named Industry: its null needs no read
