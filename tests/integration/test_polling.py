"""The polling source against the emulator: ties, late commits, future stamps, deletes,
budget throttling, restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from sftriggerd.events.payload import format_time
from tests.integration.polling_rig import PollingRig, make_rig
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient, control


@pytest.fixture
async def rig(
    emulator: RunningEmulator, http: aiohttp.ClientSession, tmp_path: Path
) -> AsyncIterator[PollingRig]:
    made = await make_rig(emulator.url, http, tmp_path, batch_size=10)
    yield made
    await made.store.close()


async def freeze(
    http: aiohttp.ClientSession, emulator: RunningEmulator, at: datetime | None
) -> None:
    answer = await control(
        http, emulator.url, "modstamp", {"freeze_at": format_time(at) if at else None}
    )
    assert answer.status == 200, answer.body


async def test_ties_across_page_boundaries_are_all_read_once(
    rig: PollingRig, org: OrgClient, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    tie = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    await freeze(http, emulator, tie)
    first = await org.create_many("Account", [{"Name": f"A{i}"} for i in range(25)])
    await rig.source.poll_once()
    assert rig.changes() == [("created", record_id) for record_id in first]
    assert rig.source.watermark is not None and rig.source.watermark.record_id == first[-1]
    # More records in the very same second: the (stamp, Id) watermark still finds them.
    more = await org.create_many("Account", [{"Name": f"B{i}"} for i in range(12)])
    await freeze(http, emulator, None)
    await rig.source.poll_once()
    assert [r for _, r in rig.changes()] == first + more
    assert len(await rig.store.list_deliveries(limit=1000)) == 37


async def test_create_then_update_between_polls_is_one_created(
    rig: PollingRig, org: OrgClient
) -> None:
    record = await org.create("Account", {"Name": "Acme"})
    await org.call("PATCH", f"sobjects/Account/{record}", json={"Name": "Acme 2"})
    await rig.source.poll_once()
    assert rig.changes() == [("created", record)]
    await asyncio.sleep(1.05)  # a new second, so the next stamp differs
    await org.call("PATCH", f"sobjects/Account/{record}", json={"Name": "Acme 3"})
    await rig.source.poll_once()
    assert rig.changes() == [("created", record), ("updated", record)]
    assert rig.ingest.new[-1].record["Name"] == "Acme 3"


async def test_late_commit_inside_the_lookback_is_caught(
    rig: PollingRig, org: OrgClient, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await org.create("Account", {"Name": "On time"})
    await rig.source.poll_once()
    late_stamp = datetime.now(UTC) - timedelta(seconds=60)
    answer = await control(
        http,
        emulator.url,
        "late-commit",
        {"object": "Account", "fields": {"Name": "Late"}, "stamp": format_time(late_stamp)},
    )
    assert answer.status < 300, answer.body
    await rig.source.poll_once()
    assert [e.record["Name"] for e in rig.ingest.new] == ["On time", "Late"]
    assert rig.ingest.new[-1].change == "created"
    await rig.source.poll_once()  # the look-back reads it again; nothing new is delivered
    assert len(rig.ingest.new) == 2
    assert len(await rig.store.list_deliveries()) == 2


async def test_a_future_dated_stamp_does_not_drag_the_watermark(
    rig: PollingRig, org: OrgClient, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    future = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    await freeze(http, emulator, future)
    ahead = await org.create("Account", {"Name": "From the future"})
    await freeze(http, emulator, None)
    now_record = await org.create("Account", {"Name": "Now"})
    await rig.source.poll_once()
    assert rig.changes() == [("created", now_record)]
    assert rig.source.watermark is not None
    assert rig.source.watermark.time <= datetime.now(UTC)
    rig.now_offset = timedelta(hours=2)  # its time comes
    await rig.source.poll_once()
    assert rig.changes() == [("created", now_record), ("created", ahead)]


async def test_deletes_and_undeletes(
    rig: PollingRig, org: OrgClient, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    record = await org.create("Account", {"Name": "Doomed"})
    await rig.source.poll_once()
    await asyncio.sleep(1.05)
    assert (await org.call("DELETE", f"sobjects/Account/{record}")).status == 204
    await rig.source.poll_once()
    await asyncio.sleep(1.05)
    answer = await control(http, emulator.url, f"undelete/Account/{record}", {})
    assert answer.status < 300, answer.body
    await rig.source.poll_once()
    assert rig.changes() == [("created", record), ("deleted", record), ("undeleted", record)]


async def test_only_the_configured_changes_become_events(
    emulator: RunningEmulator, http: aiohttp.ClientSession, org: OrgClient, tmp_path: Path
) -> None:
    rig = await make_rig(emulator.url, http, tmp_path, events=["deleted"])
    record = await org.create("Account", {"Name": "X"})
    await rig.source.poll_once()
    await asyncio.sleep(1.05)
    await org.call("DELETE", f"sobjects/Account/{record}")
    await rig.source.poll_once()
    assert rig.changes() == [("deleted", record)]
    await rig.store.close()


async def test_start_from_latest_skips_what_came_before(
    emulator: RunningEmulator, http: aiohttp.ClientSession, org: OrgClient, tmp_path: Path
) -> None:
    await org.create("Account", {"Name": "Before"})
    await asyncio.sleep(1.05)
    rig = await make_rig(emulator.url, http, tmp_path, start_from="latest")
    await rig.source.poll_once()
    await asyncio.sleep(1.05)
    after = await org.create("Account", {"Name": "After"})
    await rig.source.poll_once()
    assert rig.changes() == [("created", after)]
    await rig.store.close()


async def test_where_and_fields_shape_the_query(
    emulator: RunningEmulator, http: aiohttp.ClientSession, org: OrgClient, tmp_path: Path
) -> None:
    rig = await make_rig(
        emulator.url, http, tmp_path, where="Industry = 'Energy'", fields=["Name", "Industry"]
    )
    await org.create("Account", {"Name": "Skip", "Industry": "Retail"})
    keep = await org.create("Account", {"Name": "Keep", "Industry": "Energy"})
    await rig.source.poll_once()
    assert rig.changes() == [("created", keep)]
    assert rig.ingest.new[0].record == {
        "Id": keep,
        "CreatedDate": rig.ingest.new[0].record["CreatedDate"],
        "SystemModstamp": rig.ingest.new[0].record["SystemModstamp"],
        "IsDeleted": False,
        "Name": "Keep",
        "Industry": "Energy",
    }
    await rig.store.close()


async def test_restart_resumes_from_the_watermark_with_nothing_lost_or_repeated(
    emulator: RunningEmulator, http: aiohttp.ClientSession, org: OrgClient, tmp_path: Path
) -> None:
    first = await make_rig(emulator.url, http, tmp_path, batch_size=5)
    before = await org.create_many("Account", [{"Name": f"A{i}"} for i in range(12)])
    await first.source.poll_once()
    while_down = await org.create_many("Account", [{"Name": f"B{i}"} for i in range(7)])
    second = await make_rig(emulator.url, http, tmp_path, store=first.store, batch_size=5)
    await second.source.poll_once()
    assert [r for _, r in first.changes()] == before
    # The second source's look-back re-reads the first batch; the store drops it as known.
    assert [r for _, r in second.changes() if r not in before] == while_down
    rows = await first.store.list_deliveries(limit=100)
    assert len(rows) == 19 and len({r.event_id for r in rows}) == 19
    await first.store.close()


async def test_budget_throttles_and_resumes(
    emulator: RunningEmulator, http: aiohttp.ClientSession, org: OrgClient, tmp_path: Path
) -> None:
    rig = await make_rig(emulator.url, http, tmp_path, budget=0.5)
    await control(http, emulator.url, "limits", {"max": 1000, "used": 600})
    await org.create("Account", {"Name": "Waiting"})
    await rig.client.limits()  # learn the usage
    stopping = asyncio.Event()
    runner = asyncio.create_task(rig.source.run(stopping))

    def throttled() -> float:
        value = rig.metrics.registry.get_sample_value(
            "sftriggerd_poll_throttled_total", {"trigger": "accounts"}
        )
        return value or 0.0

    async with asyncio.timeout(5):  # the positive signal first: a cycle was throttled
        while throttled() < 1:
            await asyncio.sleep(0.02)
    assert rig.changes() == []
    assert rig.source.not_ready_reasons() == ["accounts: first polling cycle not done"]
    await control(http, emulator.url, "limits", {"max": 1000, "used": 100})
    for _ in range(100):
        if rig.changes():
            break
        await asyncio.sleep(0.1)
    stopping.set()
    await asyncio.wait_for(runner, 5)
    assert [change for change, _ in rig.changes()] == ["created"]
    assert rig.source.not_ready_reasons() == []
    usage = rig.client.budget.usage
    assert usage is not None and usage.used <= 500
    await rig.store.close()


async def test_salesforce_errors_mark_the_trigger_failed_and_polling_goes_on(
    emulator: RunningEmulator, http: aiohttp.ClientSession, org: OrgClient, tmp_path: Path
) -> None:
    rig = await make_rig(emulator.url, http, tmp_path, where="Nope__c = 1")
    stopping = asyncio.Event()
    runner = asyncio.create_task(rig.source.run(stopping))
    async with asyncio.timeout(5):
        while rig.source.status.state != "failed":
            await asyncio.sleep(0.02)
    assert "INVALID_FIELD" in (rig.source.status.last_error or "")
    stopping.set()
    await asyncio.wait_for(runner, 5)
    await rig.store.close()
