"""Replay over real HTTP: -1, -2, N, retention, per-channel sequences, restarts, starving."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from emulator.tests.streaming_helpers import Bayeux, cookie_jar, headers_of, replay_ids
from sftriggerd_emulator.context import EmulatorSettings
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient, control

TIMEOUT_MS = 1500
Starter = Callable[[EmulatorSettings], Awaitable[tuple[RunningEmulator, web.AppRunner]]]


def invalid_replay(replay: int) -> str:
    return (
        f"400::The replayId {{{replay}}} you provided was invalid.  Please provide a valid ID,"
        " -2 to replay all events, or -1 to replay only new events."
    )


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    # Sessions outlive the days the retention tests move the clock forward.
    return EmulatorSettings(
        state_dir=tmp_path / "org", cometd_timeout_ms=TIMEOUT_MS, session_idle_s=30 * 86400
    )


@pytest.fixture
async def cometd_http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=cookie_jar()) as session:
        yield session


@pytest.fixture
def bayeux(emulator: RunningEmulator, org: OrgClient, cometd_http: aiohttp.ClientSession) -> Bayeux:
    return Bayeux(cometd_http, emulator.url, org.token)


async def publish(http: aiohttp.ClientSession, url: str, name: str, **payload: Any) -> int:
    answer = await control(http, url, f"events/{name}", {"payload": payload})
    assert answer.status == 200, answer.body
    return int(answer.body["replayId"])


async def create_accounts(org: OrgClient, *names: str) -> list[str]:
    return [await org.create("Account", {"Name": name}) for name in names]


async def test_replay_new_only_is_the_default(bayeux: Bayeux, org: OrgClient) -> None:
    await create_accounts(org, "old")
    await bayeux.start("/data/AccountChangeEvent")
    await bayeux.subscribe("/data/ContactChangeEvent", -1)
    [new_id] = await create_accounts(org, "new")
    events = await bayeux.events()
    assert [header["recordIds"] for header in headers_of(events)] == [[new_id]]


async def test_replay_all_retained_then_strictly_after_n(bayeux: Bayeux, org: OrgClient) -> None:
    ids = await create_accounts(org, "a", "b", "c")
    await bayeux.start("/data/AccountChangeEvent", replay=-2)
    everything = await bayeux.events()
    assert [header["recordIds"] for header in headers_of(everything)] == [[i] for i in ids]
    replays = replay_ids(everything)
    assert replays == sorted(replays) and len(set(replays)) == 3

    reply = await bayeux.subscribe("/data/AccountChangeEvent", replays[0])
    assert reply["successful"] is True
    after_first = await bayeux.events()
    assert replay_ids(after_first) == replays[1:]


async def test_replay_ids_are_monotonic_non_contiguous_and_per_channel(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    ink = [await publish(http, emulator.url, "Low_Ink__e", Level__c=n) for n in range(8)]
    paper = [await publish(http, emulator.url, "Paper_Jam__e") for _ in range(8)]
    for sequence in (ink, paper):
        steps = [later - earlier for earlier, later in itertools.pairwise(sequence)]
        assert all(step > 0 for step in steps)
        assert any(step > 1 for step in steps), sequence
    assert set(ink).isdisjoint(paper)


async def test_replay_id_outside_retention_is_invalid_with_the_exact_message(
    bayeux: Bayeux, org: OrgClient, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await create_accounts(org, "a", "b", "c")
    await bayeux.start("/data/AccountChangeEvent", replay=-2)
    replays = replay_ids(await bayeux.events())
    dropped = await control(http, emulator.url, "retention", {"drop_before_replay_id": replays[2]})
    assert dropped.body == {"dropped": 2}
    reply = await bayeux.subscribe("/data/AccountChangeEvent", replays[0])
    assert reply == {
        "clientId": bayeux.client_id,
        "channel": "/meta/subscribe",
        "id": reply["id"],
        "subscription": "/data/AccountChangeEvent",
        "error": invalid_replay(replays[0]),
        "successful": False,
    }
    too_new = replays[2] + 1_000
    reply = await bayeux.subscribe("/data/AccountChangeEvent", too_new)
    assert reply["error"] == invalid_replay(too_new)
    assert (await bayeux.subscribe("/data/AccountChangeEvent", replays[2]))["successful"]
    assert (await bayeux.subscribe("/data/AccountChangeEvent", -2))["successful"]
    assert replay_ids(await bayeux.events()) == [replays[2]]


async def test_retention_drop_can_target_one_channel(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    ink = [await publish(http, emulator.url, "Low_Ink__e") for _ in range(3)]
    jam = await publish(http, emulator.url, "Paper_Jam__e")
    dropped = await control(
        http,
        emulator.url,
        "retention",
        {"drop_before_replay_id": ink[-1] + jam + 1, "channel": "/event/Low_Ink__e"},
    )
    assert dropped.body == {"dropped": 3}
    channels = (await control(http, emulator.url, "channels")).body["streams"]
    assert channels["/event/Low_Ink__e"] == {
        "oldest_replay_id": None,
        "latest_replay_id": ink[-1],
        "retained": 0,
    }
    assert channels["/event/Paper_Jam__e"]["retained"] == 1


async def test_retention_window_follows_the_emulator_clock(
    bayeux: Bayeux, org: OrgClient, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    [first] = await create_accounts(org, "old")
    await publish(http, emulator.url, "Low_Ink__e")
    await bayeux.start("/data/AccountChangeEvent", replay=-2)
    [old_replay] = replay_ids(await bayeux.events())
    # 25 h: past a generic/PushTopic window, inside the 72 h of CDC and platform events.
    await control(http, emulator.url, "clock", {"advance_s": 25 * 3600})
    await bayeux.start()  # the old client expired long ago
    assert (await bayeux.subscribe("/data/AccountChangeEvent", old_replay))["successful"]
    await control(http, emulator.url, "clock", {"advance_s": 48 * 3600})
    await bayeux.start()
    reply = await bayeux.subscribe("/data/AccountChangeEvent", old_replay)
    assert reply["error"] == invalid_replay(old_replay)
    assert (await bayeux.subscribe("/event/Low_Ink__e", -2))["successful"]
    [second] = await create_accounts(org, "new")
    await bayeux.subscribe("/data/AccountChangeEvent", -2)
    events = await bayeux.events()
    assert [header["recordIds"] for header in headers_of(events)] == [[second]]
    assert first != second


async def test_replay_history_survives_a_restart(
    tmp_path: Path, emulator_starter: Starter, http: aiohttp.ClientSession
) -> None:
    settings = EmulatorSettings(state_dir=tmp_path / "state", cometd_timeout_ms=TIMEOUT_MS)
    first, runner = await emulator_starter(settings)
    org = await OrgClient.login(http, first.url)
    await org.create("PushTopic", {"Name": "Named", "Query": "SELECT Id, Name FROM Account"})
    await control(http, first.url, "channels", {"name": "/u/Kept"})
    ids = await create_accounts(org, "a", "b")
    published = await publish(http, first.url, "Low_Ink__e", Level__c=1)
    pushed = await control(http, first.url, "channels/push", {"channel": "/u/Kept", "payload": "p"})
    await runner.cleanup()

    settings.port = 0
    second, _ = await emulator_starter(settings)
    org = await OrgClient.login(http, second.url)
    [later] = await create_accounts(org, "c")
    async with aiohttp.ClientSession(cookie_jar=cookie_jar()) as cometd_http:
        client = Bayeux(cometd_http, second.url, org.token)
        await client.start("/data/AccountChangeEvent", replay=-2)
        await client.subscribe("/event/Low_Ink__e", -2)
        for channel in ("/topic/Named", "/u/Kept"):
            assert (await client.subscribe(channel, -2))["successful"], channel
        events = await client.events()
    cdc = [e for e in events if e["channel"] == "/data/AccountChangeEvent"]
    assert [header["recordIds"] for header in headers_of(cdc)] == [[i] for i in [*ids, later]]
    replays = replay_ids(cdc)
    assert replays == sorted(set(replays))
    [ink] = [e for e in events if e["channel"] == "/event/Low_Ink__e"]
    assert ink["data"]["event"]["replayId"] == published
    assert ink["data"]["payload"]["Level__c"] == 1
    topic = [e["data"]["sobject"]["Name"] for e in events if e["channel"] == "/topic/Named"]
    assert topic == ["a", "b", "c"]
    [kept] = [e for e in events if e["channel"] == "/u/Kept"]
    assert kept["data"]["event"]["replayId"] == pushed.body["replayId"]


async def test_starved_channel_delivers_nothing_until_released(
    bayeux: Bayeux, org: OrgClient, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await bayeux.start("/data/AccountChangeEvent")
    starved = await control(
        http,
        emulator.url,
        "cometd/starve",
        {"channel": "/data/AccountChangeEvent", "enabled": True},
    )
    assert starved.body == {"starved": ["/data/AccountChangeEvent"]}
    ids = await create_accounts(org, "a", "b")
    started = time.monotonic()
    assert await bayeux.events() == []
    assert time.monotonic() - started >= TIMEOUT_MS / 1000 - 0.2
    poll = asyncio.create_task(bayeux.events())
    await asyncio.sleep(0.2)
    await control(
        http,
        emulator.url,
        "cometd/starve",
        {"channel": "/data/AccountChangeEvent", "enabled": False},
    )
    events = await asyncio.wait_for(poll, 1.0)
    assert [header["recordIds"] for header in headers_of(events)] == [[i] for i in ids]


async def test_shutdown_answers_held_connects_at_once(
    tmp_path: Path, emulator_starter: Starter, http: aiohttp.ClientSession
) -> None:
    settings = EmulatorSettings(state_dir=None, cometd_timeout_ms=60_000)
    running, runner = await emulator_starter(settings)
    org = await OrgClient.login(http, running.url)
    async with aiohttp.ClientSession(cookie_jar=cookie_jar()) as cometd_http:
        client = Bayeux(cometd_http, running.url, org.token)
        await client.start()
        poll = asyncio.create_task(client.connect())
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await runner.cleanup()
        assert time.monotonic() - started < 2.0
        [ack] = await poll
    assert ack["successful"] is True
