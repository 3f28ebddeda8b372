"""The stream loop over the Pub/Sub transport and the emulator's Pub/Sub API: an idle
channel's stored position kept inside retention by keepalives, and a session that ends
mid-stream (a re-login that fails first, then works, then the next fault after it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from sftriggerd.config.settings import TriggerSettings
from sftriggerd.salesforce.pubsub.client import PubSubClient
from sftriggerd.sources.context import SourceContext
from sftriggerd.sources.pubsub_transport import pubsub_transports
from sftriggerd.sources.status import TriggerStatus
from sftriggerd.sources.streaming import StreamingSource
from sftriggerd.sources.transport import TransportFactory
from sftriggerd.store.base import Store
from sftriggerd_emulator.context import EmulatorSettings
from tests.integration.streaming_rig import StreamingRig, make_streaming_rig
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient, control
from tests.support.waiting import eventually

KEEPALIVE_S = 0.3


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    return EmulatorSettings(
        state_dir=tmp_path / "org", pubsub_port=0, pubsub_keepalive_s=KEEPALIVE_S
    )


class PubSubRigs:
    """Streaming rigs whose sources speak Pub/Sub, each over a client of its own session."""

    def __init__(
        self, emulator: RunningEmulator, http: aiohttp.ClientSession, tmp_path: Path
    ) -> None:
        self._emulator, self._http, self._tmp_path = emulator, http, tmp_path
        self.clients: list[PubSubClient] = []
        self.transports: list[TransportFactory] = []

    async def make(self, store: Store | None = None) -> StreamingRig:
        rig = await make_streaming_rig(self._emulator.url, self._http, self._tmp_path, store)
        pubsub = PubSubClient(rig.client.session, f"http://{self._emulator.pubsub_address}")
        self.clients.append(pubsub)
        context = SourceContext(
            client=rig.client, ingest=rig.ingest, store=rig.store, metrics=rig.metrics
        )
        transports = pubsub_transports(
            pubsub, keepalive_s=KEEPALIVE_S, stall_margin_s=1.0, settle_s=0.2
        )
        self.transports.append(transports)
        rig.source = StreamingSource(
            rig.source.trigger, context, rig.source.status, backoff_cap_s=0.2, transport=transports
        )
        return rig


@pytest.fixture
async def rigs(
    emulator: RunningEmulator, http: aiohttp.ClientSession, tmp_path: Path
) -> AsyncIterator[PubSubRigs]:
    made = PubSubRigs(emulator, http, tmp_path)
    yield made
    for client in made.clients:
        await client.close()


async def post(
    http: aiohttp.ClientSession, emulator: RunningEmulator, path: str, body: dict[str, object]
) -> None:
    answer = await control(http, emulator.url, path, body)
    assert answer.status == 200, answer.body


async def stored_replay(rig: StreamingRig) -> object:
    saved = await rig.store.checkpoint("accounts")
    assert saved is not None
    return saved.position.get("replay_id")


async def test_keepalives_keep_an_idle_channels_position_inside_retention(
    rigs: PubSubRigs, org: OrgClient, http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    rig = await rigs.make()
    rig.start()
    await rig.connected()
    account = await org.create("Account", {"Name": "The last one for a while"})
    await rig.wait_events(1)
    after_event = await stored_replay(rig)
    saved = await rig.store.checkpoint("accounts")
    assert saved is not None and isinstance(after_event, dict)
    reached = saved.position.get("reached")
    # Other objects' changes move the change stream on; this channel stays idle.
    for n in range(3):
        await org.create("Contact", {"LastName": f"Elsewhere {n}"})

    async def moved() -> bool:
        return await stored_replay(rig) != after_event

    await eventually(moved, timeout_s=10)
    await rig.stop()
    kept = await rig.store.checkpoint("accounts")
    assert kept is not None and kept.position.get("reached") == reached  # no event proved more
    assert rig.changes() == [("created", account)]
    # Retention drops every event: the position stored from the keepalive still serves, the
    # one after the last Account event would not.
    await post(http, emulator, "retention", {"drop_before_replay_id": 10**12})
    again = await rigs.make(rig.store)
    again.start()
    await again.connected()
    later = await org.create("Account", {"Name": "After the idle spell"})
    await again.wait_events(1)
    await again.stop()
    assert again.changes() == [("created", later)]
    assert again.faults("replay_expired") == 0
    await rig.store.close()


async def test_a_session_ended_mid_stream_logs_in_again_and_resumes_after_the_stored_position(
    rigs: PubSubRigs, org: OrgClient, http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    rig = await rigs.make()
    rig.start()
    await rig.connected()
    first = await org.create("Account", {"Name": "Before the session ends"})
    await rig.wait_events(1)
    logins = rig.client.session.logins
    # Made while the stream is quiet, so only a resume after the stored position brings it.
    await post(http, emulator, "pubsub/silence", {"enabled": True})
    missed = await org.create("Account", {"Name": "While the session ends"})
    # The re-login fails first (a fault during the recovery), then works.
    await post(http, emulator, "grants", {"blocked": ["password"]})
    await post(http, emulator, "sessions/expire", {})

    await eventually(lambda: rig.faults("login_failed") >= 1, timeout_s=10)
    assert rig.faults("relogin") >= 1
    await post(http, emulator, "grants", {"blocked": []})
    await post(http, emulator, "pubsub/silence", {"enabled": False})
    await rig.wait_events(2)
    assert rig.changes() == [("created", first), ("created", missed)]
    assert rig.client.session.logins == logins + 1
    # The next fault after the recovery: a dropped stream reconnects and nothing is lost.
    await rig.connected()
    await post(http, emulator, "pubsub/drop", {})
    org_again = await OrgClient.login(http, emulator.url)
    last = await org_again.create("Account", {"Name": "After the drop"})
    await rig.wait_events(3)
    await rig.stop()
    await rig.store.close()
    assert rig.changes() == [("created", first), ("created", missed), ("created", last)]
    assert rig.faults("rehandshake") >= 1
    assert rig.client.session.logins == logins + 1  # one login served the whole recovery


async def test_triggers_sharing_the_channel_and_session_log_in_again_once(
    rigs: PubSubRigs, http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    accounts = await rigs.make()
    contacts_trigger = TriggerSettings.model_validate(
        {
            **accounts.source.trigger.model_dump(),
            "name": "contacts",
            "object": "Contact",
            "fields": ["LastName"],
        }
    )
    context = SourceContext(
        client=accounts.client,
        ingest=accounts.ingest,
        store=accounts.store,
        metrics=accounts.metrics,
    )
    contacts = StreamingSource(
        contacts_trigger,
        context,
        TriggerStatus(name="contacts", mode="streaming", mode_reason="test"),
        backoff_cap_s=0.2,
        transport=rigs.transports[-1],
    )
    stopping = asyncio.Event()
    accounts.start()
    contacts_task = asyncio.create_task(contacts.run(stopping))
    try:
        await accounts.connected()
        await eventually(lambda: contacts.status.connected)
        logins = accounts.client.session.logins
        await post(http, emulator, "sessions/expire", {})
        await eventually(lambda: accounts.faults("relogin") >= 1, timeout_s=10)
        await eventually(lambda: contacts.status.last_error is not None, timeout_s=10)
        # Both subscribed again (each back-fills the minute it may have missed, finding none).
        await accounts.connected()
        await eventually(lambda: contacts.status.connected, timeout_s=10)
        org = await OrgClient.login(http, emulator.url)
        account = await org.create("Account", {"Name": "After the login"})
        contact = await org.create("Contact", {"LastName": "After the login"})
        await accounts.wait_events(2)
        assert sorted(accounts.changes()) == sorted([("created", account), ("created", contact)])
        assert accounts.client.session.logins == logins + 1
    finally:
        stopping.set()
        await accounts.stop()
        await asyncio.wait_for(contacts_task, 10)
        await accounts.store.close()


async def test_a_silent_stream_stalls_and_the_loop_reconnects(
    rigs: PubSubRigs, org: OrgClient, http: aiohttp.ClientSession, emulator: RunningEmulator
) -> None:
    rig = await rigs.make()
    rig.start()
    await rig.connected()
    await post(http, emulator, "pubsub/silence", {"enabled": True})
    quiet = await org.create("Account", {"Name": "Sent into the silence"})
    await eventually(lambda: rig.faults("error") >= 1, timeout_s=10)
    assert "neither events nor a keepalive" in (rig.source.status.last_error or "")
    await post(http, emulator, "pubsub/silence", {"enabled": False})
    await rig.wait_events(1)
    await rig.stop()
    await rig.store.close()
    assert rig.changes() == [("created", quiet)]
