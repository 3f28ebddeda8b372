"""The stream loop over a transport that is not CometD: opaque (bytes) positions are stored
and handed back as they came, and each neutral outcome takes its recovery path. The
transport is scripted; the store (SQLite), the org (emulator) and the back-fill are real."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from sftriggerd.events.streamed import Received
from sftriggerd.sources.context import SourceContext
from sftriggerd.sources.position import ReplayId
from sftriggerd.sources.streaming import StreamingSource
from sftriggerd.sources.transport import (
    Reauthenticate,
    Reconnect,
    ReplayExpired,
    Start,
    StartAt,
    StreamTransport,
    TransportOutcome,
)
from tests.integration.streaming_rig import StreamingRig, make_streaming_rig
from tests.salesforce_messages import CDC_CHANNEL, cdc
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient


def bare_item(record: str, position: bytes) -> Received:
    """A CDC change as a transport without envelopes delivers it."""
    payload = cdc("CREATE", [record], replay=None, Name=record)["data"]["payload"]
    payload["ChangeEventHeader"]["transactionKey"] = f"tx-{record}"
    return Received(
        channel=CDC_CHANNEL,
        payload=payload,
        header=None,
        position=position,
        identity=base64.b64encode(position).decode(),
        raw={"payload": payload},
        content=payload,
        payload_path=("payload",),
    )


@dataclass
class Script:
    """What every session of the scripted transport does, and what it was asked."""

    batches: list[list[Received]] = field(default_factory=list)
    open_fails: list[TransportOutcome] = field(default_factory=list)
    expired: set[bytes] = field(default_factory=set)
    starts: list[Start] = field(default_factory=list)
    sessions: int = 0
    closed: int = 0


class ScriptedTransport:
    def __init__(self, script: Script) -> None:
        self._script = script

    def resumable(self, position: ReplayId) -> bool:
        return isinstance(position, bytes)

    async def open(self) -> None:
        self._script.sessions += 1
        if self._script.open_fails:
            raise self._script.open_fails.pop(0)

    async def subscribe(self, start: Start) -> None:
        self._script.starts.append(start)
        if isinstance(start, bytes) and start in self._script.expired:
            raise ReplayExpired(f"replay id {start.hex()} is past retention")

    async def receive(self) -> list[Received]:
        if self._script.batches:
            return self._script.batches.pop(0)
        await asyncio.sleep(0.05)
        return []

    async def close(self) -> None:
        self._script.closed += 1


async def scripted_rig(
    emulator: RunningEmulator,
    http: aiohttp.ClientSession,
    tmp_path: Path,
    script: Script,
    rig: StreamingRig | None = None,
) -> StreamingRig:
    made = await make_streaming_rig(
        emulator.url, http, tmp_path, store=None if rig is None else rig.store
    )
    context = SourceContext(
        client=made.client, ingest=made.ingest, store=made.store, metrics=made.metrics
    )

    def transport(channel: str) -> StreamTransport:
        assert channel == CDC_CHANNEL
        return ScriptedTransport(script)

    made.source = StreamingSource(
        made.source.trigger, context, made.source.status, backoff_cap_s=0.05, transport=transport
    )
    return made


@pytest.fixture
async def first(
    emulator: RunningEmulator, http: aiohttp.ClientSession, tmp_path: Path
) -> AsyncIterator[tuple[StreamingRig, Script]]:
    script = Script(
        batches=[[bare_item("001A", b"\x00\x01")], [bare_item("001B", b"\x00\x02\xff")]]
    )
    rig = await scripted_rig(emulator, http, tmp_path, script)
    rig.start()
    await rig.wait_events(2)
    await rig.stop()
    yield rig, script
    await rig.store.close()


async def test_opaque_positions_are_stored_as_base64_and_resumed_after(
    first: tuple[StreamingRig, Script],
    emulator: RunningEmulator,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    rig, script = first
    assert script.starts == [StartAt.NEW]
    saved = await rig.store.checkpoint("accounts")
    assert saved is not None
    assert saved.position["replay_id"] == {"base64": base64.b64encode(b"\x00\x02\xff").decode()}
    assert rig.source.status.checkpoint == "replay_id 0002ff"
    assert [e.source["replay_id"] for e in rig.ingest.new] == ["AAE=", "AAL/"]
    again_script = Script()
    again = await scripted_rig(emulator, http, tmp_path, again_script, rig)
    again.start()
    await again.connected()
    await again.stop()
    assert again_script.starts == [b"\x00\x02\xff"]
    assert again_script.closed == again_script.sessions == 1


async def test_an_expired_opaque_position_subscribes_new_and_back_fills_by_time(
    first: tuple[StreamingRig, Script],
    emulator: RunningEmulator,
    http: aiohttp.ClientSession,
    tmp_path: Path,
    org: OrgClient,
) -> None:
    rig, _ = first
    missed = await org.create("Account", {"Name": "Made while down"})
    # After the fill, the stream goes on and stores the next position it delivers.
    script = Script(expired={b"\x00\x02\xff"}, batches=[[bare_item("001D", b"\x09")]])
    again = await scripted_rig(emulator, http, tmp_path, script, rig)
    again.start()
    await again.wait_events(2)
    await again.stop()
    assert script.starts == [b"\x00\x02\xff", StartAt.NEW]
    assert sorted(e.record_id or "" for e in again.ingest.new) == sorted([missed, "001D"])
    assert again.faults("replay_expired") == 1
    # A restart after the recovery resumes after the position stored since, not the old one.
    third_script = Script()
    third = await scripted_rig(emulator, http, tmp_path, third_script, rig)
    third.start()
    await third.connected()
    await third.stop()
    assert third_script.starts == [b"\x09"] and third.faults("replay_expired") == 0


async def test_reconnect_and_reauthenticate_take_their_paths_and_the_stream_goes_on(
    emulator: RunningEmulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    script = Script(
        batches=[[bare_item("001C", b"\x07")]],
        open_fails=[Reconnect("forgotten"), Reauthenticate("session ended")],
    )
    rig = await scripted_rig(emulator, http, tmp_path, script)
    await rig.client.session.token()  # logged in, as a CometD transport's open would
    logins = rig.client.session.logins
    rig.start()
    await rig.wait_events(1)
    await rig.stop()
    await rig.store.close()
    assert rig.faults("rehandshake") == 1 and rig.faults("relogin") == 1
    assert rig.client.session.logins == logins + 1  # one login again, then a new session
    assert script.sessions == script.closed == 3  # every session closed, failed ones too
    assert rig.source.status.last_error == "session ended"
