"""Hostile review of the Pub/Sub transport (issue 16): an expired or corrupted stored replay
id is told from a stream fault only when the server refuses it within `settle_s` (1 s) of
the first request (`established` is set by a timer, not by an answer). Salesforce says
nothing when it accepts a subscription, so a refusal that comes a little later (a slow
server, a long round trip) reaches `receive` as a TransportFailure: the loop backs off and
subscribes after the same refused id again, forever, and never takes the back-fill path.
The trigger is wedged for good; the events made meanwhile are never delivered.

Here the window is 0 s (as a refusal 1.1 s late makes it in production); the emulator
refuses the stored id as Salesforce does (`replayid.corrupted`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from sftriggerd.salesforce.pubsub.client import PubSubClient
from sftriggerd.sources.context import SourceContext
from sftriggerd.sources.position import ReplayPosition, encode
from sftriggerd.sources.pubsub_transport import pubsub_transports
from sftriggerd.sources.streaming import StreamingSource
from sftriggerd.store.records import Checkpoint
from sftriggerd_emulator.context import EmulatorSettings
from tests.integration.streaming_rig import StreamingRig, make_streaming_rig
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient

CHANNEL = "/data/AccountChangeEvent"
KEEPALIVE_S = 0.3


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    return EmulatorSettings(
        state_dir=tmp_path / "org", pubsub_port=0, pubsub_keepalive_s=KEEPALIVE_S
    )


@pytest.fixture
async def slow_refusal_rig(
    emulator: RunningEmulator, http: aiohttp.ClientSession, tmp_path: Path
) -> AsyncIterator[StreamingRig]:
    rig = await make_streaming_rig(emulator.url, http, tmp_path)
    pubsub = PubSubClient(rig.client.session, f"http://{emulator.pubsub_address}")
    context = SourceContext(
        client=rig.client, ingest=rig.ingest, store=rig.store, metrics=rig.metrics
    )
    # settle_s=0: every refusal comes "after the settle window".
    transports = pubsub_transports(pubsub, keepalive_s=KEEPALIVE_S, stall_margin_s=1.0, settle_s=0)
    rig.source = StreamingSource(
        rig.source.trigger, context, rig.source.status, backoff_cap_s=0.2, transport=transports
    )
    yield rig
    await rig.stop()
    await pubsub.close()
    await rig.store.close()


async def test_a_stored_replay_id_refused_late_is_back_filled(
    slow_refusal_rig: StreamingRig, org: OrgClient
) -> None:
    rig = slow_refusal_rig
    reached = datetime.now(UTC) - timedelta(minutes=5)
    position = encode(ReplayPosition(CHANNEL, b"\x00not-a-replay-id-of-this-topic", reached))
    await rig.ingest("accounts", [], Checkpoint(trigger="accounts", position=position))
    made_while_down = await org.create("Account", {"Name": "Made while down"})
    rig.start()
    await rig.wait_events(1, timeout_s=8)  # the back-fill from `reached` would bring it
    assert (made_while_down, "created") in [(r, c) for c, r in rig.changes()]
    assert rig.faults("replay_expired") >= 1
