"""Every CometD trigger of the daemon on one Bayeux client (sources/cometd_hub.py), over the
real emulator and a real SQLite store: one handshake for many channels, more triggers than
the org's client limit, two clients only for a channel read twice, a forgotten client and
an ended session recovered with one handshake and one login for all, a failure in the
middle of that recovery, an unavailable channel beside good ones, leaving, and a trigger
that falls behind its inbox. Then the routing of one long-poll answer, fuzzed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftriggerd.sources.cometd_hub import CometdHub, Inbox, route
from sftriggerd.sources.transport import Reconnect, TransportFailure
from sftriggerd_emulator.context import EmulatorSettings
from tests.integration.shared_client_rig import (
    HandshakeRefusal,
    SharedRig,
    SharedTrigger,
    make_shared_rig,
)
from tests.support.emulator import Middleware, RunningEmulator
from tests.support.sfclient import OrgClient
from tests.support.waiting import eventually

ORDERS = "/event/Order_Placed__e"


@pytest.fixture
def refusal() -> HandshakeRefusal:
    return HandshakeRefusal()


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    """One-second long-polls, so that a quiet client answers soon."""
    return EmulatorSettings(state_dir=tmp_path / "org", pubsub_port=0, cometd_timeout_ms=1000)


@pytest.fixture
def emulator_middlewares(refusal: HandshakeRefusal) -> tuple[Middleware, ...]:
    return (refusal.middleware,)


@pytest.fixture
async def rig(
    emulator: RunningEmulator, http: aiohttp.ClientSession, tmp_path: Path
) -> AsyncIterator[SharedRig]:
    made = await make_shared_rig(emulator, http, tmp_path, inbox_limit=10_000)
    yield made
    await made.close()


async def publish(rig: SharedRig, amount: int) -> str:
    await rig.control("events/Order_Placed__e", {"payload": {"Amount__c": amount}})
    return str(amount)


async def three(rig: SharedRig) -> tuple[SharedTrigger, SharedTrigger, SharedTrigger]:
    """Account and Contact changes and a platform event, started and subscribed."""
    accounts = rig.make("accounts", object="Account")
    contacts = rig.make("contacts", object="Contact")
    orders = rig.make("orders", channel=ORDERS)
    await rig.started(accounts, contacts, orders)
    return accounts, contacts, orders


async def one_each(
    rig: SharedRig, org: OrgClient, triggers: tuple[SharedTrigger, ...], tag: str, amount: int
) -> list[str]:
    """One change for each of `three`'s triggers, each stored; what each should store."""
    counts = [len(trigger.ingest.received) for trigger in triggers]
    account = await org.create("Account", {"Name": f"Account {tag}"})
    contact = await org.create("Contact", {"LastName": f"Contact {tag}"})
    order = await publish(rig, amount)
    for trigger, count in zip(triggers, counts, strict=True):
        await trigger.wait_events(count + 1)
    return [account, contact, order]


async def test_three_channels_share_one_handshake(rig: SharedRig, org: OrgClient) -> None:
    triggers = await three(rig)
    made = await one_each(rig, org, triggers, "one", 1)
    for trigger, expected in zip(triggers, made, strict=True):
        assert trigger.labels() == [expected], trigger.name
    assert await rig.stat("handshakes") == 1
    assert await rig.stat("subscribes") == 3
    assert await rig.live_clients() == 1
    assert rig.hub.handshakes == 1


async def test_more_triggers_than_the_org_allows_clients(
    rig: SharedRig, emulator: RunningEmulator
) -> None:
    emulator.ctx.settings.max_cometd_clients = 2
    channels = [f"/u/Feed{n}" for n in range(5)]
    for channel in channels:
        await rig.control("channels", {"name": channel})
    triggers = [rig.make(f"feed{n}", channel=channel) for n, channel in enumerate(channels)]
    await rig.started(*triggers)
    for channel in reversed(channels):
        await rig.control("channels/push", {"channel": channel, "payload": f"to {channel}"})
    for trigger, channel in zip(triggers, channels, strict=True):
        await trigger.wait_events(1)
        assert trigger.labels() == [f"to {channel}"]
    assert await rig.stat("handshakes") == 1
    assert await rig.live_clients() == 1
    # The limit is in force: a second client fits, a third is refused.
    second, third = CometdHub(rig.client), CometdHub(rig.client)
    await second.join(channels[0])
    with pytest.raises(TransportFailure, match=r"limit|403|refused|exceeded"):
        await third.join(channels[0])
    await second.close()


async def test_one_channel_read_twice_gets_two_clients(rig: SharedRig, org: OrgClient) -> None:
    early = rig.make("early", object="Account")
    await rig.started(early)
    first = await org.create("Account", {"Name": "First"})
    await early.wait_events(1)
    await early.stop()
    second = await org.create("Account", {"Name": "Second"})
    # `early` resumes from the replay id of `first`; `late` replays all that is retained.
    late = rig.make("late", object="Account", start_from="earliest")
    await rig.started(early, late)
    third = await org.create("Account", {"Name": "Third"})
    await early.wait_events(3)
    await late.wait_events(3)
    assert early.labels() == [first, second, third]
    assert late.labels() == [first, second, third]
    assert await rig.live_clients() == 2
    assert rig.hub.handshakes == 3  # early's first client, then one per reader


async def test_a_forgotten_client_comes_back_with_one_handshake(
    rig: SharedRig, org: OrgClient
) -> None:
    triggers = await three(rig)
    before = await one_each(rig, org, triggers, "before", 1)
    assert await rig.control("clients/forget", {}) == {"forgotten": 1}
    during = await one_each(rig, org, triggers, "during", 2)
    for trigger, made in zip(triggers, zip(before, during, strict=True), strict=True):
        assert trigger.labels() == list(made), trigger.name
        assert trigger.faults("rehandshake") == 1
    assert await rig.stat("handshakes") == 2
    assert rig.hub.handshakes == 2
    assert await rig.live_clients() == 1


async def test_faults_in_a_row_after_a_forgotten_client(
    rig: SharedRig,
    org: OrgClient,
    refusal: HandshakeRefusal,
    emulator: RunningEmulator,
    http: aiohttp.ClientSession,
) -> None:
    triggers = await three(rig)
    expected: list[list[str]] = [[], [], []]

    async def changes(tag: str, amount: int, org: OrgClient) -> None:
        for made, each in zip(
            await one_each(rig, org, triggers, tag, amount), expected, strict=True
        ):
            each.append(made)

    await changes("before", 1, org)
    # The forgotten client's first re-handshake is refused: the next one serves everyone.
    refusal.remaining = 1
    await rig.control("clients/forget", {})
    await changes("outage", 2, org)
    assert refusal.refused == 1
    assert await rig.stat("handshakes") == 2
    assert rig.hub.handshakes == 3  # the refused one counted too
    # Quiet: nothing churns, and what comes after it arrives.
    await asyncio.sleep(3)
    assert await rig.stat("handshakes") == 2
    await changes("after quiet", 3, org)
    # The session ends: one login serves every trigger.
    logins, emulator_logins = rig.client.session.logins, await rig.stat("logins")
    await rig.control("sessions/expire", {})
    await eventually(lambda: rig.client.session.logins > logins, timeout_s=10)
    for trigger in triggers:
        await trigger.connected()
    assert await rig.stat("logins") == emulator_logins + 1
    org = await OrgClient.login(http, emulator.url)
    await changes("after login", 4, org)
    assert rig.client.session.logins == logins + 1
    assert [t.faults("relogin") for t in triggers] == [1, 1, 1]
    # Restarted right after: what is made while stopped arrives.
    for trigger in triggers:
        await trigger.stop()
    rig.restart_hub()
    account = await org.create("Account", {"Name": "While stopped"})
    contact = await org.create("Contact", {"LastName": "While stopped"})
    order = await publish(rig, 5)
    again = [rig.make(t.name, **_trigger_fields(t)) for t in triggers]
    await rig.started(*again)
    for trigger, made, each in zip(again, (account, contact, order), expected, strict=True):
        await trigger.wait_events(1)
        each.append(made)
        stored = [*_labels_of(triggers, trigger.name), *trigger.labels()]
        assert stored == each, trigger.name
    assert rig.hub.handshakes == 1
    assert rig.client.session.logins == logins + 1


async def test_an_unavailable_channel_leaves_the_others_streaming(
    rig: SharedRig, org: OrgClient
) -> None:
    accounts = rig.make("accounts", object="Account")
    orders = rig.make("orders", channel=ORDERS)
    missing = rig.make("missing", channel="/topic/NotDefined")
    await rig.started(accounts, orders)
    missing.start()
    await eventually(lambda: missing.faults("channel_unavailable") >= 3, timeout_s=10)
    assert "does not exist" in (missing.source.status.last_error or "")
    assert not missing.source.status.connected
    record = await org.create("Account", {"Name": "Beside a bad channel"})
    amount = await publish(rig, 7)
    await accounts.wait_events(1)
    await orders.wait_events(1)
    assert (accounts.labels(), orders.labels()) == ([record], [amount])
    assert await rig.stat("handshakes") == 1
    assert rig.hub.handshakes == 1
    assert await rig.live_clients() == 1
    for trigger in (accounts, orders):
        assert trigger.source.status.last_error is None, trigger.name
        assert trigger.faults("rehandshake") + trigger.faults("error") == 0


async def push_fanout(org: OrgClient, name: str) -> int:
    """How many clients the org says a push to the generic channel `/u/<name>` reaches."""
    body = {"pushEvents": [{"payload": f"probe {name}", "userIds": []}]}
    answer = await org.call("POST", f"sobjects/StreamingChannel/{name}/push", json=body)
    assert answer.status == 200, answer.body
    return int(answer.body[0]["fanoutCount"])


async def test_leaving_unsubscribes_and_the_last_disconnects(
    rig: SharedRig, org: OrgClient
) -> None:
    for name in ("Left", "Stays"):
        await rig.control("channels", {"name": f"/u/{name}"})
    left = rig.make("left", channel="/u/Left")
    stays = rig.make("stays", channel="/u/Stays")
    await rig.started(left, stays)
    spans = (await rig.control("subscribers"))["channels"]
    clients = {channel: [span["client"] for span in spans[channel]] for channel in spans}
    assert len(clients["/u/Left"]) == 1 and clients["/u/Stays"] == clients["/u/Left"]
    assert (await push_fanout(org, "Left"), await push_fanout(org, "Stays")) == (1, 1)
    await left.stop()
    assert (await push_fanout(org, "Left"), await push_fanout(org, "Stays")) == (0, 1)
    await stays.wait_events(2)
    assert stays.labels() == ["probe Stays", "probe Stays"]
    assert await rig.live_clients() == 1
    await stays.stop()
    assert await rig.live_clients() == 0
    assert await rig.stat("handshakes") == 1


async def test_a_trigger_behind_its_inbox_resubscribes_alone(
    emulator: RunningEmulator, http: aiohttp.ClientSession, tmp_path: Path, org: OrgClient
) -> None:
    rig = await make_shared_rig(emulator, http, tmp_path, inbox_limit=3)
    try:
        slow = rig.make("slow", object="Account")
        orders = rig.make("orders", channel=ORDERS)
        await rig.started(slow, orders)
        first = await org.create("Account", {"Name": "Stored position"})
        await slow.wait_events(1)
        slow.ingest.gate.clear()
        made = [await org.create("Account", {"Name": f"Behind {n}"}) for n in range(10)]
        amounts = [await publish(rig, n) for n in range(3)]
        await orders.wait_events(3)
        session = rig.hub._sessions[0]
        await eventually(lambda: _overflowed(session._inboxes.get(slow.source.channel)))
        slow.ingest.gate.set()
        await slow.wait_events(11)
        assert slow.labels() == [first, *made]
        # Each resubscription stores what its full inbox kept (3 events at least) before the
        # next: however the server batches its replay, the 10 take at most 4 of them.
        assert 1 <= slow.faults("rehandshake") <= 4
        assert orders.labels() == amounts
        assert orders.faults("rehandshake") == 0
        assert rig.hub.handshakes == 1
        assert await rig.live_clients() == 1
    finally:
        await rig.close()


def _overflowed(inbox: Inbox | None) -> bool:
    return inbox is not None and isinstance(inbox.overflow, Reconnect)


def _trigger_fields(trigger: SharedTrigger) -> dict[str, Any]:
    settings = trigger.source.trigger
    return {"object": settings.object, "channel": settings.channel}


def _labels_of(triggers: tuple[SharedTrigger, ...], name: str) -> list[str]:
    return next(t.labels() for t in triggers if t.name == name)


# -- routing one long-poll answer -----------------------------------------------------------

SUBSCRIBED = ["/data/AccountChangeEvent", "/event/Order_Placed__e", "/u/Feed"]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
CHANNELS = st.sampled_from([*SUBSCRIBED, "/data/ContactChangeEvent", "/meta/connect"]) | JSON
MESSAGES = st.lists(
    st.dictionaries(st.just("channel"), CHANNELS)
    | st.fixed_dictionaries({"channel": CHANNELS, "data": JSON}),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(
    answers=st.lists(st.tuples(MESSAGES, st.booleans()), min_size=1, max_size=5),
    limit=st.integers(1, 6),
)
def test_routing_any_answer(answers: list[tuple[list[dict[str, Any]], bool]], limit: int) -> None:
    """Against a model: each subscribed channel's inbox holds its messages in order up to
    `limit`; the one past a full inbox marks it overflowed and it takes no more; a take
    (when the trigger comes back, here after any answer) empties it."""
    inboxes = {channel: Inbox() for channel in SUBSCRIBED}
    held: dict[str, list[object]] = {channel: [] for channel in SUBSCRIBED}
    overflowed = dict.fromkeys(SUBSCRIBED, False)
    answered = 0
    for messages, taken in answers:
        route(inboxes, messages, limit)
        answered += 1
        for message in messages:
            channel = message.get("channel")
            if not isinstance(channel, str) or channel not in held or overflowed[channel]:
                continue
            if len(held[channel]) < limit:
                held[channel].append(message)
            else:
                overflowed[channel] = True
        for channel, inbox in inboxes.items():
            assert inbox.answers == answered
            assert inbox.changed.is_set()
            assert isinstance(inbox.overflow, Reconnect) is overflowed[channel]
            assert [item.raw for item in inbox.items] == held[channel]
            assert all(item.channel == channel for item in inbox.items)
        if taken:
            for channel, inbox in inboxes.items():
                assert [item.raw for item in inbox.take()] == held[channel]
                held[channel] = []
            answered = 0
