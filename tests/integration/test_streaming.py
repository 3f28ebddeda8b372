"""The streaming source against the emulator's Streaming API and its faults, over HTTP."""

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
    made = await make_streaming_rig(emulator.url, http, tmp_path)
    made.start()
    await made.connected()
    yield made
    await made.stop()
    await made.store.close()


async def test_creates_updates_deletes_and_undeletes(
    rig: StreamingRig, org: OrgClient, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    record = await org.create("Account", {"Name": "Acme"})
    await org.call("PATCH", f"sobjects/Account/{record}", json={"Name": "Acme 2"})
    await org.call("DELETE", f"sobjects/Account/{record}")
    await control(http, emulator.url, f"undelete/Account/{record}", {})
    await rig.wait_events(4)
    assert rig.changes() == [
        ("created", record),
        ("updated", record),
        ("deleted", record),
        ("undeleted", record),
    ]
    updated = rig.ingest.new[1]
    assert "Name" in updated.changed_fields and updated.record["Name"] == "Acme 2"
    assert updated.source["kind"] == "streaming" and isinstance(updated.source["replay_id"], int)
    saved = await rig.store.checkpoint("accounts")
    assert (
        saved is not None and saved.position["replay_id"] == rig.ingest.new[-1].source["replay_id"]
    )


async def test_a_bulk_insert_gives_one_event_per_record(rig: StreamingRig, org: OrgClient) -> None:
    ids = await org.create_many("Account", [{"Name": "Bulk"} for _ in range(25)])
    await rig.wait_events(25)
    assert rig.changes() == [("created", record) for record in ids]
    assert len({e.source["replay_id"] for e in rig.ingest.new}) == 1  # one merged event


async def test_forgotten_client_rehandshakes_and_resubscribes(
    rig: StreamingRig, org: OrgClient, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await control(http, emulator.url, "clients/forget", {})
    record = await org.create("Account", {"Name": "After forget"})
    await rig.wait_events(1)
    assert rig.changes() == [("created", record)]
    assert rig.faults("rehandshake") >= 1


async def test_expired_session_relogs_in(
    rig: StreamingRig, org: OrgClient, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    logins = rig.client.session.logins
    await control(http, emulator.url, "sessions/expire", {})
    # The re-login first: a change made at once may still ride the held long-poll, which
    # notices the expiry only within a second.
    async with asyncio.timeout(10):
        while rig.client.session.logins == logins:
            await asyncio.sleep(0.02)
    org_again = await OrgClient.login(http, emulator.url)
    record = await org_again.create("Account", {"Name": "After expiry"})
    await rig.wait_events(1)
    # Nothing was streamed yet, so the stored position is a time and the new session
    # back-fills from it after subscribing: a record made in the instant between the two
    # comes by both ways (at least once, never lost).
    assert set(rig.changes()) == {("created", record)}


async def test_server_errors_back_off_and_recover(
    rig: StreamingRig, org: OrgClient, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await control(http, emulator.url, "fail", {"surface": "cometd", "count": 3, "status": 503})
    record = await org.create("Account", {"Name": "After 503s"})
    await rig.wait_events(1, timeout_s=15)
    assert rig.changes() == [("created", record)]
    assert rig.faults("error") >= 1


async def test_restart_resumes_from_the_stored_replay_id(
    rig: StreamingRig,
    org: OrgClient,
    emulator: RunningEmulator,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    first = await org.create("Account", {"Name": "Before stop"})
    await rig.wait_events(1)
    await rig.stop()
    while_down = await org.create_many("Account", [{"Name": f"Down {i}"} for i in range(3)])
    again = await make_streaming_rig(emulator.url, http, tmp_path, store=rig.store)
    again.start()
    await again.wait_events(3)
    await again.stop()
    assert rig.changes() == [("created", first)]
    assert again.changes() == [("created", record) for record in while_down]


async def test_expired_replay_id_is_back_filled_by_polling(
    rig: StreamingRig,
    org: OrgClient,
    emulator: RunningEmulator,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    await org.create("Account", {"Name": "Seen"})
    await rig.wait_events(1)
    await rig.stop()
    missed = await org.create_many("Account", [{"Name": f"Missed {i}"} for i in range(4)])
    answer = await control(http, emulator.url, "retention", {"drop_before_replay_id": 10**12})
    assert answer.status == 200, answer.body
    again = await make_streaming_rig(emulator.url, http, tmp_path, store=rig.store)
    again.start()
    await again.wait_events(4)
    assert [r for _, r in again.changes()] == missed
    assert all(e.source.get("gap_fill") is True for e in again.ingest.new)
    assert again.faults("replay_expired") == 1
    after = await org.create("Account", {"Name": "Streaming again"})
    await again.wait_events(5)
    assert again.changes()[-1] == ("created", after)
    assert again.ingest.new[-1].source["kind"] == "streaming"
    await again.stop()


async def test_gap_notices_reread_the_records(
    rig: StreamingRig, org: OrgClient, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    record = await org.create("Account", {"Name": "Gappy"})
    await rig.wait_events(1)
    answer = await control(
        http,
        emulator.url,
        "gap",
        {"object": "Account", "record_ids": [record], "change_type": "GAP_UPDATE"},
    )
    assert answer.status == 200, answer.body
    await rig.wait_events(2)
    reread = rig.ingest.new[1]
    assert (reread.change, reread.record_id) == ("updated", record)
    assert reread.source.get("gap_fill") is True and reread.record["Name"] == "Gappy"


async def test_platform_events_and_their_unrecoverable_gap(
    emulator: RunningEmulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    rig = await make_streaming_rig(
        emulator.url, http, tmp_path, name="orders", object=None, channel="/event/Order_Placed__e"
    )
    rig.start()
    await rig.connected()
    answer = await control(
        http, emulator.url, "events/Order_Placed__e", {"payload": {"Amount__c": 12}}
    )
    assert answer.status == 200, answer.body
    await rig.wait_events(1)
    event = rig.ingest.new[0]
    assert (event.change, event.object, event.record["Amount__c"]) == (
        "event",
        "Order_Placed__e",
        12,
    )
    await rig.stop()
    await control(http, emulator.url, "events/Order_Placed__e", {"payload": {"Amount__c": 13}})
    await control(http, emulator.url, "retention", {"drop_before_replay_id": 10**12})
    rig.start()
    await rig.connected()
    assert "cannot be back-filled" in (rig.source.status.last_error or "")
    assert rig.faults("replay_expired") == 1
    await rig.stop()
    await rig.store.close()


async def test_auto_mode_polls_when_the_channel_cannot_be_subscribed(
    emulator: RunningEmulator, http: aiohttp.ClientSession, org: OrgClient, tmp_path: Path
) -> None:
    from sftriggerd.sources.auto import AutoSource
    from sftriggerd.sources.context import SourceContext
    from sftriggerd.sources.polling import PollingSource

    rig = await make_streaming_rig(
        emulator.url,
        http,
        tmp_path,
        mode="auto",
        channel="/topic/NotDefined",
        poll_interval="100ms",
        poll_delay="0s",
        start_from="earliest",
    )
    trigger = rig.source.trigger
    context = SourceContext(
        client=rig.client, ingest=rig.ingest, store=rig.store, metrics=rig.metrics
    )
    polling = PollingSource(trigger, context, rig.source.status)
    auto = AutoSource(rig.source, polling, rig.source.status)
    stopping = asyncio.Event()
    task = asyncio.create_task(auto.run(stopping))
    record = await org.create("Account", {"Name": "Polled"})
    await rig.wait_events(1)
    assert rig.changes() == [("created", record)]
    assert rig.source.status.mode == "polling"
    assert "streaming unavailable" in rig.source.status.mode_reason
    assert "does not exist" in rig.source.status.mode_reason
    stopping.set()
    await asyncio.wait_for(task, 5)
    await rig.store.close()


async def test_a_stalled_long_poll_is_noticed_and_replaced(
    rig: StreamingRig, org: OrgClient, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    # Held past the advised timeout (1 s) plus the margin (1 s): the watchdog gives up on it.
    answer = await control(
        http, emulator.url, "delay", {"surface": "cometd", "seconds": 4, "count": 1}
    )
    assert answer.status == 200, answer.body
    await asyncio.sleep(2.5)
    record = await org.create("Account", {"Name": "After the stall"})
    await rig.wait_events(1, timeout_s=15)
    assert rig.changes() == [("created", record)]
    assert rig.faults("error") >= 1


async def test_cut_long_polls_reconnect(
    rig: StreamingRig, org: OrgClient, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await asyncio.sleep(0.2)
    answer = await control(http, emulator.url, "cometd/cut", {})
    assert answer.status == 200, answer.body
    record = await org.create("Account", {"Name": "After the cut"})
    await rig.wait_events(1, timeout_s=15)
    assert rig.changes() == [("created", record)]


async def test_ignored_users_and_enrichment(
    emulator: RunningEmulator, http: aiohttp.ClientSession, org: OrgClient, tmp_path: Path
) -> None:
    rig = await make_streaming_rig(
        emulator.url, http, tmp_path, enrich=True, fields=["Name", "Industry"]
    )
    rig.start()
    await rig.connected()
    record = await org.create("Account", {"Name": "Full", "Industry": "Energy"})
    await org.call("PATCH", f"sobjects/Account/{record}", json={"Name": "Fuller"})
    await rig.wait_events(2)
    updated = rig.ingest.new[1]
    assert updated.record["Industry"] == "Energy"  # not in the change, read back whole
    assert updated.changed_fields[:1] == ("Name",)
    await rig.stop()
    user_id = rig.ingest.new[0].raw["data"]["payload"]["ChangeEventHeader"]["commitUser"]
    quiet = await make_streaming_rig(
        emulator.url, http, tmp_path, store=rig.store, ignore_users=[user_id]
    )
    quiet.start()
    await quiet.connected()
    await org.create("Account", {"Name": "Our own write"})
    # The positive signal first: a later write by another user arrives, on the same channel,
    # so the ignored write before it has been read (and left out) by then.
    await control(http, emulator.url, "users", {"username": "other@example.com", "password": "pw"})
    other = await OrgClient.login(http, emulator.url, username="other@example.com", password="pw")
    someone_else = await other.create("Account", {"Name": "Someone else's write"})
    await quiet.wait_events(1)
    assert quiet.changes() == [("created", someone_else)]
    await quiet.stop()
    await rig.store.close()


async def test_a_silent_stream_verifies_itself_and_back_fills(
    emulator: RunningEmulator, http: aiohttp.ClientSession, org: OrgClient, tmp_path: Path
) -> None:
    rig = await make_streaming_rig(emulator.url, http, tmp_path, verify_after="2s")
    rig.start()
    await rig.connected()
    # The event bus holds the event back (as in Salesforce's "missing replay tightening").
    answer = await control(
        http,
        emulator.url,
        "cometd/starve",
        {"channel": "/data/AccountChangeEvent", "enabled": True},
    )
    assert answer.status == 200, answer.body
    record = await org.create("Account", {"Name": "Starved"})
    await rig.wait_events(1, timeout_s=15)
    assert rig.changes() == [("created", record)]
    assert rig.ingest.new[0].source.get("gap_fill") is True
    assert rig.faults("silence_missed") == 1
    await rig.stop()
    await rig.store.close()
