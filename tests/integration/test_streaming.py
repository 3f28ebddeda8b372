"""The streaming source against the emulator and its faults, over the wire. Changes, platform
events and the streaming scenarios (a killed stream, a forced re-login, a restart from the
stored position, an expired position, gap notices, a starved and a stalled stream) run over
both transports, each fault made as tests/support/transports.py's table says; the tests on
the `rig` fixture are CometD's own (its errors, cut polls, PushTopics)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from sftriggerd.store.base import Store
from sftriggerd_emulator.context import EmulatorSettings
from tests.integration.streaming_rig import StreamingRig, make_streaming_rig
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient, control
from tests.support.transports import FAULTS, Control
from tests.support.waiting import eventually

# CometD holds an empty poll, and Pub/Sub sends a keepalive, after this long (s).
HOLD_S = 1.0


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    return EmulatorSettings(
        state_dir=tmp_path / "org",
        cometd_timeout_ms=int(HOLD_S * 1000),
        pubsub_port=0,
        pubsub_keepalive_s=HOLD_S,
    )


class Rigs:
    """Streaming rigs over the transport under test; every one is stopped, and its Pub/Sub
    client and store closed, after the test."""

    def __init__(
        self,
        emulator: RunningEmulator,
        http: aiohttp.ClientSession,
        tmp_path: Path,
        transport: str,
    ) -> None:
        self._emulator, self._http, self._tmp_path = emulator, http, tmp_path
        self.transport = transport
        self.made: list[StreamingRig] = []

    async def make(self, store: Store | None = None, **trigger: object) -> StreamingRig:
        address = self._emulator.pubsub_address if self.transport == "pubsub" else None
        rig = await make_streaming_rig(
            self._emulator.url,
            self._http,
            self._tmp_path,
            store,
            pubsub_address=address,
            pubsub_keepalive_s=HOLD_S,
            **trigger,
        )
        self.made.append(rig)
        return rig

    async def started(self, store: Store | None = None, **trigger: object) -> StreamingRig:
        rig = await self.make(store, **trigger)
        rig.start()
        await rig.connected()
        return rig

    async def control(self, call: Control) -> None:
        answer = await control(self._http, self._emulator.url, call.path, call.body)
        assert answer.status == 200, answer.body


@pytest.fixture
async def rigs(
    emulator: RunningEmulator, http: aiohttp.ClientSession, tmp_path: Path, transport: str
) -> AsyncIterator[Rigs]:
    made = Rigs(emulator, http, tmp_path, transport)
    yield made
    stores: dict[int, Store] = {}
    for rig in made.made:
        await rig.stop()
        if rig.pubsub is not None:
            await rig.pubsub.close()
        stores[id(rig.store)] = rig.store
    for store in stores.values():
        await store.close()


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
    rigs: Rigs, org: OrgClient, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    rig = await rigs.started()
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
    assert updated.source["kind"] == "streaming"
    assert updated.source["transport"] == rigs.transport
    # CometD's replay id is a number; Pub/Sub's opaque bytes, shown and stored in base64.
    last = rig.ingest.new[-1].source["replay_id"]
    if rigs.transport == "cometd":
        assert isinstance(last, int)
        stored: object = last
    else:
        assert isinstance(last, str)
        stored = {"base64": last}
    saved = await rig.store.checkpoint("accounts")
    assert saved is not None and saved.position["replay_id"] == stored


async def test_a_bulk_insert_gives_one_event_per_record(rigs: Rigs, org: OrgClient) -> None:
    rig = await rigs.started()
    ids = await org.create_many("Account", [{"Name": "Bulk"} for _ in range(25)])
    await rig.wait_events(25)
    assert rig.changes() == [("created", record) for record in ids]
    assert len({e.source["replay_id"] for e in rig.ingest.new}) == 1  # one merged event


async def test_server_errors_back_off_and_recover(
    rig: StreamingRig, org: OrgClient, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await control(http, emulator.url, "fail", {"surface": "cometd", "count": 3, "status": 503})
    record = await org.create("Account", {"Name": "After 503s"})
    await rig.wait_events(1, timeout_s=15)
    assert rig.changes() == [("created", record)]
    assert rig.faults("error") >= 1


async def test_platform_events_and_their_unrecoverable_gap(
    rigs: Rigs, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    rig = await rigs.started(name="orders", object=None, channel="/event/Order_Placed__e")
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
    assert event.source["transport"] == rigs.transport
    await rig.stop()
    await control(http, emulator.url, "events/Order_Placed__e", {"payload": {"Amount__c": 13}})
    await rigs.control(Control("retention", {"drop_before_replay_id": 10**12}))
    rig.start()
    await rig.connected()
    assert "cannot be back-filled" in (rig.source.status.last_error or "")
    assert rig.faults("replay_expired") == 1


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


async def test_a_killed_stream_reconnects_and_resubscribes(rigs: Rigs, org: OrgClient) -> None:
    rig = await rigs.started()
    await rigs.control(FAULTS[rigs.transport].kill)
    record = await org.create("Account", {"Name": "After the kill"})
    await rig.wait_events(1)
    # The new subscription and its back-fill of the minute before may both bring it.
    assert set(rig.changes()) == {("created", record)}
    assert rig.faults("rehandshake") >= 1


async def test_a_forced_relogin_logs_in_again_and_streams_on(
    rigs: Rigs, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    rig = await rigs.started()
    logins = rig.client.session.logins
    await rigs.control(Control("sessions/expire", {}))
    # The re-login first: a change made at once may still ride the open stream, which
    # notices the expiry only within a second.
    await eventually(lambda: rig.client.session.logins > logins, timeout_s=10)
    org_again = await OrgClient.login(http, emulator.url)
    record = await org_again.create("Account", {"Name": "After expiry"})
    await rig.wait_events(1)
    # Made while the new session subscribes and back-fills the minute it may have missed:
    # the fill, the stream or both bring it (two sources, two ids, as docs/webhooks.md says).
    assert set(rig.changes()) == {("created", record)}
    assert rig.faults("relogin") >= 1
    assert rig.client.session.logins == logins + 1


async def test_restart_resumes_from_the_stored_position(rigs: Rigs, org: OrgClient) -> None:
    rig = await rigs.started()
    first = await org.create("Account", {"Name": "Before stop"})
    await rig.wait_events(1)
    await rig.stop()
    while_down = await org.create_many("Account", [{"Name": f"Down {i}"} for i in range(3)])
    again = await rigs.make(store=rig.store)
    again.start()
    await again.wait_events(3)
    assert rig.changes() == [("created", first)]
    assert again.changes() == [("created", record) for record in while_down]
    assert again.faults("replay_expired") == 0
    assert not any(e.source.get("gap_fill") for e in again.ingest.new)  # streamed, not polled


async def test_an_expired_position_is_back_filled_by_polling(rigs: Rigs, org: OrgClient) -> None:
    rig = await rigs.started()
    await org.create("Account", {"Name": "Seen"})
    await rig.wait_events(1)
    await rig.stop()
    missed = await org.create_many("Account", [{"Name": f"Missed {i}"} for i in range(4)])
    await rigs.control(Control("retention", {"drop_before_replay_id": 10**12}))
    again = await rigs.make(store=rig.store)
    again.start()
    await again.wait_events(4)
    assert [r for _, r in again.changes()] == missed
    assert all(e.source.get("gap_fill") is True for e in again.ingest.new)
    assert again.faults("replay_expired") == 1
    await again.connected()
    after = await org.create("Account", {"Name": "Streaming again"})
    await again.wait_events(5)
    assert again.changes()[-1] == ("created", after)
    assert again.ingest.new[-1].source["kind"] == "streaming"
    assert again.ingest.new[-1].source["transport"] == rigs.transport


async def test_gap_notices_reread_the_records(rigs: Rigs, org: OrgClient) -> None:
    rig = await rigs.started()
    record = await org.create("Account", {"Name": "Gappy"})
    await rig.wait_events(1)
    gap = {"object": "Account", "record_ids": [record], "change_type": "GAP_UPDATE"}
    await rigs.control(Control("gap", gap))
    await rig.wait_events(2)
    reread = rig.ingest.new[1]
    assert (reread.change, reread.record_id) == ("updated", record)
    assert reread.source.get("gap_fill") is True and reread.record["Name"] == "Gappy"
    assert rig.faults("gap") == 1


async def test_a_silent_stream_verifies_itself_and_back_fills(rigs: Rigs, org: OrgClient) -> None:
    rig = await rigs.started(verify_after="2s")
    # The event bus holds the event back (as in Salesforce's "missing replay tightening"),
    # keepalives still come.
    await rigs.control(
        Control("cometd/starve", {"channel": "/data/AccountChangeEvent", "enabled": True})
    )
    record = await org.create("Account", {"Name": "Starved"})
    await rig.wait_events(1, timeout_s=15)
    assert rig.changes() == [("created", record)]
    assert rig.ingest.new[0].source.get("gap_fill") is True
    assert rig.faults("silence_missed") == 1


async def test_a_stalled_stream_is_noticed_and_replaced(rigs: Rigs, org: OrgClient) -> None:
    rig = await rigs.started()
    faults = FAULTS[rigs.transport]
    # Nothing for longer than the hold (1 s) plus the watchdog's margin (1 s): it gives up.
    await rigs.control(faults.stall)
    quiet = await org.create("Account", {"Name": "Sent into the stall"})
    await eventually(lambda: rig.faults("error") >= 1, timeout_s=10)
    if faults.unstall is not None:
        await rigs.control(faults.unstall)
    record = await org.create("Account", {"Name": "After the stall"})
    await rig.wait_events(2, timeout_s=15)
    # The new session's back-fill and its stream may both bring the first one.
    assert set(rig.changes()) == {("created", quiet), ("created", record)}
