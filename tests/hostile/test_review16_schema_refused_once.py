"""Hostile review of the Pub/Sub transport (issue 16): an item whose GetSchema is refused
with PERMISSION_DENIED, NOT_FOUND or INVALID_ARGUMENT is made a poison item at once, and the
batch's position moves past it. Poison is kept for people to read, never delivered again:
the event is lost, though the refusal may be passing (a permission set being changed, a
schema id the server has not yet spread) and the next fetch would read it. The stream loop
itself treats a SalesforceApiError other than a 400 ("permissions that may change") as a
reason to try the batch again; the schema refusal is not given that chance even once.

Here the emulator refuses GetSchema once; the Account made is never delivered as an event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from sftriggerd.events.streamed import Received
from sftriggerd.salesforce.pubsub.client import SCHEMA_FAILURE_HOLD_S, PubSubClient
from sftriggerd.sources.context import SourceContext
from sftriggerd.sources.pubsub_transport import SCHEMA_REFUSALS, pubsub_transports
from sftriggerd.sources.streaming import StreamingSource
from sftriggerd.sources.transport import StartAt, StreamTransport, TransportFailure
from sftriggerd_emulator.context import EmulatorSettings
from tests.integration.streaming_rig import StreamingRig, make_streaming_rig
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient, control

KEEPALIVE_S = 0.3


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    return EmulatorSettings(
        state_dir=tmp_path / "org", pubsub_port=0, pubsub_keepalive_s=KEEPALIVE_S
    )


@pytest.fixture
async def pubsub_rig(
    emulator: RunningEmulator, http: aiohttp.ClientSession, tmp_path: Path
) -> AsyncIterator[StreamingRig]:
    rig = await make_streaming_rig(emulator.url, http, tmp_path)
    pubsub = PubSubClient(rig.client.session, f"http://{emulator.pubsub_address}")
    context = SourceContext(
        client=rig.client, ingest=rig.ingest, store=rig.store, metrics=rig.metrics
    )
    transports = pubsub_transports(
        pubsub, keepalive_s=KEEPALIVE_S, stall_margin_s=1.0, settle_s=0.2
    )
    rig.source = StreamingSource(
        rig.source.trigger, context, rig.source.status, backoff_cap_s=0.2, transport=transports
    )
    yield rig
    await rig.stop()
    await pubsub.close()
    await rig.store.close()


async def test_an_event_whose_schema_is_refused_once_is_still_delivered(
    pubsub_rig: StreamingRig, org: OrgClient, http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    rig = pubsub_rig
    rig.start()
    await rig.connected()
    fault = {"status": "PERMISSION_DENIED", "match": "GetSchema", "count": 1}
    answer = await control(http, emulator.url, "pubsub/fail", fault)
    assert answer.status == 200, answer.body
    account = await org.create("Account", {"Name": "Its schema was refused once"})
    await rig.wait_events(1, timeout_s=8)
    assert ("created", account) in rig.changes()
    assert rig.faults("poison") == 0


async def test_a_schema_refused_every_time_is_retried_then_its_event_is_poison(
    emulator: RunningEmulator, http: aiohttp.ClientSession, org: OrgClient, tmp_path: Path
) -> None:
    rig = await make_streaming_rig(emulator.url, http, tmp_path)
    now_s = [0.0]  # the client's clock: it remembers a schema given up for a while
    url = f"http://{emulator.pubsub_address}"
    pubsub = PubSubClient(rig.client.session, url, clock=lambda: now_s[0])
    make = pubsub_transports(pubsub, keepalive_s=KEEPALIVE_S, stall_margin_s=1.0, settle_s=0.2)
    await org.create("Account", {"Name": "Its schema is always refused"})
    fault = {"status": "PERMISSION_DENIED", "match": "GetSchema", "count": SCHEMA_REFUSALS}
    answer = await control(http, emulator.url, "pubsub/fail", fault)
    assert answer.status == 200, answer.body
    try:
        for _ in range(SCHEMA_REFUSALS - 1):  # each session meets the refusal: retried
            with pytest.raises(TransportFailure, match="GetSchema failed: PERMISSION_DENIED"):
                await _first_items(make("/data/AccountChangeEvent"))
        [item] = await _first_items(make("/data/AccountChangeEvent"))  # then given up
        assert item.unreadable is not None and "cannot be had" in item.unreadable
        assert item.identity is not None
        # Once the give-up is forgotten (after the client's hold), the refusals are too: the
        # same schema, refused once more, is retried again.
        now_s[0] += SCHEMA_FAILURE_HOLD_S
        await control(http, emulator.url, "pubsub/fail", {**fault, "count": 1})
        await org.create("Account", {"Name": "Made after"})
        with pytest.raises(TransportFailure, match="GetSchema failed: PERMISSION_DENIED"):
            await _first_items(make("/data/AccountChangeEvent"))
        [first, second] = await _first_items(make("/data/AccountChangeEvent"), count=2)
        assert first.unreadable is None and second.unreadable is None
    finally:
        await pubsub.close()
        await rig.store.close()


async def _first_items(subject: StreamTransport, count: int = 1) -> list[Received]:
    items: list[Received] = []
    try:
        await subject.open()
        await subject.subscribe(StartAt.RETAINED)
        async with asyncio.timeout(8):
            while len(items) < count:
                items += await subject.receive()
    finally:
        await subject.close()
    return items


async def test_a_schema_refused_with_an_auth_code_logs_in_again_not_poison(
    pubsub_rig: StreamingRig, org: OrgClient, http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    rig = pubsub_rig
    rig.start()
    await rig.connected()
    fault = {
        "status": "PERMISSION_DENIED",
        "error_code": "sfdc.platform.eventbus.grpc.service.auth.error",
        "match": "GetSchema",
        "count": 1,
    }
    answer = await control(http, emulator.url, "pubsub/fail", fault)
    assert answer.status == 200, answer.body
    account = await org.create("Account", {"Name": "Its schema met a stale token"})
    await rig.wait_events(1)
    assert ("created", account) in rig.changes()
    assert rig.faults("relogin") == 1
    assert rig.faults("poison") == 0
