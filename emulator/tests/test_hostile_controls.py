"""The hostile controls over real HTTP: raw publishes, arbitrary advice, unknown-client
refusals, malformed Retry-After, faults on the k-th matching request, reversed query ties."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from emulator.tests.streaming_helpers import Bayeux, cookie_jar
from sftriggerd_emulator.context import EmulatorSettings
from tests.support.emulator import RunningEmulator, start_emulator
from tests.support.sfclient import OrgClient, control, token_request

TIMEOUT_MS = 1500
CHANNEL = "/data/AccountChangeEvent"


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    return EmulatorSettings(state_dir=tmp_path / "org", cometd_timeout_ms=TIMEOUT_MS)


@pytest.fixture
async def cometd_http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=cookie_jar()) as session:
        yield session


@pytest.fixture
def bayeux(emulator: RunningEmulator, org: OrgClient, cometd_http: aiohttp.ClientSession) -> Bayeux:
    return Bayeux(cometd_http, emulator.url, org.token)


def header(**fields: Any) -> dict[str, Any]:
    return {"payload": {"ChangeEventHeader": fields}}


async def stats(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    answer = await control(http, url, "stats")
    assert answer.status == 200
    body: dict[str, Any] = answer.body
    return body


def answered_at_once(bayeux: Bayeux) -> dict[str, Any]:
    """A connect that asks not to be held (`advice.timeout` 0)."""
    return {**bayeux.connect_message(), "advice": {"timeout": 0}}


# -- POST /_emulator/publish ----------------------------------------------------------------


async def test_publish_sends_a_raw_message_with_the_next_replay_id(
    bayeux: Bayeux, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await bayeux.start(CHANNEL)
    data = header(entityName=["not", "a", "string"], recordIds="001*", commitTimestamp="soon")
    answer = await control(http, emulator.url, "publish", {"channel": CHANNEL, "data": data})
    assert answer.status == 200, answer.body
    [event] = await bayeux.events()
    assert event["channel"] == CHANNEL
    assert event["data"]["payload"] == data["payload"]
    assert event["data"]["event"]["replayId"] == answer.body["position"]


async def test_publish_without_replay_id_and_with_a_lone_surrogate(
    bayeux: Bayeux, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await bayeux.start(CHANNEL)
    # Written by hand: the JSON escape of a lone surrogate, which Python's json reads.
    body = (
        '{"channel": "/data/AccountChangeEvent", "replay_id": null,'
        ' "data": {"payload": {"Name": "bad \\ud800 name"}}}'
    )
    async with http.post(
        f"{emulator.url}/_emulator/publish",
        data=body,
        headers={"Content-Type": "application/json"},
    ) as response:
        assert response.status == 200, await response.text()
    [event] = await bayeux.events()
    assert "event" not in event["data"]
    assert event["data"]["payload"]["Name"] == "bad \ud800 name"


async def test_publish_with_a_replay_id_of_any_type(
    bayeux: Bayeux, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await bayeux.start(CHANNEL)
    positions = []
    for replay_id in ("12", 10**20, 2**40):
        answer = await control(
            http,
            emulator.url,
            "publish",
            {"channel": CHANNEL, "data": header(entityName="Account"), "replay_id": replay_id},
        )
        assert answer.status == 200, answer.body
        positions.append(answer.body["position"])
    events = await bayeux.events()
    assert [event["data"]["event"]["replayId"] for event in events] == ["12", 10**20, 2**40]
    # A larger integer (that fits 64 bits) becomes the event's place in the stream, so a
    # replay can start there; other values are only written into the message.
    assert positions[0] < positions[1] < 2**40 == positions[2]
    late = Bayeux(bayeux.http, emulator.url, bayeux.token)
    await late.start(CHANNEL, replay=2**40)
    await control(http, emulator.url, "publish", {"channel": CHANNEL, "data": header()})
    [after] = await late.events()
    assert after["data"]["event"]["replayId"] > 2**40


async def test_publish_on_the_all_changes_channel_takes_the_entity_from_the_header(
    emulator: RunningEmulator, org: OrgClient, cometd_http: aiohttp.ClientSession
) -> None:
    accounts = Bayeux(cometd_http, emulator.url, org.token)
    await accounts.start(CHANNEL)
    many = [f"001EM{n:013d}" for n in range(2000)]
    data = header(entityName="Account", changeType="UPDATE", recordIds=many)
    answer = await control(
        cometd_http, emulator.url, "publish", {"channel": "/data/ChangeEvents", "data": data}
    )
    assert answer.status == 200, answer.body
    [event] = await accounts.events()
    assert event["data"]["payload"]["ChangeEventHeader"]["recordIds"] == many


async def test_publish_refuses_unknown_channels_and_missing_entities(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    unknown = await control(http, emulator.url, "publish", {"channel": "/u/None", "data": {}})
    assert unknown.status == 400 and "no channel" in unknown.body["error"]
    no_entity = await control(
        http, emulator.url, "publish", {"channel": "/data/ChangeEvents", "data": {}}
    )
    assert no_entity.status == 400 and "entity" in no_entity.body["error"]
    not_object = await control(http, emulator.url, "publish", {"channel": CHANNEL, "data": "x"})
    assert not_object.status == 400


# -- POST /_emulator/cometd/advice ----------------------------------------------------------


async def test_advice_goes_on_the_next_count_connect_answers(
    bayeux: Bayeux, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await bayeux.start(CHANNEL)
    hostile = {"interval": "soon", "timeout": "²", "reconnect": 7}
    armed = await control(http, emulator.url, "cometd/advice", {"advice": hostile, "count": 2})
    assert armed.status == 200 and armed.body["advice"] == {"count": 2}
    for _ in range(2):
        replies = await bayeux.replies(answered_at_once(bayeux))
        assert replies[-1]["advice"] == hostile
    shown = await control(http, emulator.url, "cometd/advice")
    assert shown.body["advice"] == {"count": 0}
    replies = await bayeux.replies(answered_at_once(bayeux))
    assert replies[-1]["successful"] is True and "advice" not in replies[-1]


async def test_advice_may_be_any_json_and_needs_a_value(
    bayeux: Bayeux, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await control(http, emulator.url, "cometd/advice", {"advice": "not an object"})
    await bayeux.handshake()
    replies = await bayeux.connect()
    assert replies[-1]["advice"] == "not an object"
    missing = await control(http, emulator.url, "cometd/advice", {"count": 1})
    assert missing.status == 400


# -- POST /_emulator/cometd/unknown-client --------------------------------------------------


async def test_unknown_client_refuses_count_connects_and_counts_them(
    bayeux: Bayeux, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await bayeux.start(CHANNEL)
    before = await stats(http, emulator.url)
    armed = await control(http, emulator.url, "cometd/unknown-client", {"count": 2})
    assert armed.body["unknown_client"]["count"] == 2
    for _ in range(2):
        [refusal] = await bayeux.replies(bayeux.connect_message())
        assert refusal["error"] == "403::Unknown client"
        assert refusal["advice"] == {"interval": 0, "reconnect": "handshake"}
        assert "clientId" not in refusal
    # The client stayed known: the same client connects again once the refusals are spent.
    await control(http, emulator.url, "publish", {"channel": CHANNEL, "data": header()})
    assert len(await bayeux.events()) == 1
    after = await stats(http, emulator.url)
    refused = after["unknown_client_refusals"] - before.get("unknown_client_refusals", 0)
    assert refused == 2
    assert after["handshakes"] == before["handshakes"]


async def test_unknown_client_answers_a_held_connect_at_once(
    bayeux: Bayeux, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await bayeux.start(CHANNEL)
    held = asyncio.ensure_future(bayeux.replies(bayeux.connect_message()))
    await asyncio.sleep(0.2)  # let the connect be held; the refusal is the positive signal
    started = time.monotonic()
    await control(http, emulator.url, "cometd/unknown-client", {"count": 1})
    [refusal] = await held
    assert refusal["error"] == "403::Unknown client"
    assert time.monotonic() - started < TIMEOUT_MS / 1000


async def test_unknown_client_for_seconds_then_clearing(
    bayeux: Bayeux, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await bayeux.start(CHANNEL)
    armed = await control(http, emulator.url, "cometd/unknown-client", {"seconds": 30})
    assert armed.body["unknown_client"]["seconds_left"] > 29
    for _ in range(3):
        [refusal] = await bayeux.replies(bayeux.connect_message())
        assert refusal["error"] == "403::Unknown client"
    cleared = await control(http, emulator.url, "cometd/unknown-client", {"count": 0})
    assert cleared.body["unknown_client"] == {"count": 0, "seconds_left": 0.0}
    await control(http, emulator.url, "publish", {"channel": CHANNEL, "data": header()})
    assert len(await bayeux.events()) == 1
    bad = await control(http, emulator.url, "cometd/unknown-client", {"seconds": -1})
    assert bad.status == 400


# -- POST /_emulator/fail: retry_after, after, match; GET /_emulator/fail ------------------


async def test_fail_sends_any_retry_after_text(
    emulator: RunningEmulator, org: OrgClient, http: aiohttp.ClientSession
) -> None:
    digits = "9" * 5000
    for status, retry_after in ((429, "²"), (503, digits)):
        await control(
            http,
            emulator.url,
            "fail",
            {"surface": "rest", "status": status, "retry_after": retry_after},
        )
        answer = await org.call("GET", "limits")
        assert answer.status == status
        assert answer.headers["Retry-After"] == retry_after
    await control(
        http, emulator.url, "fail", {"surface": "token", "status": 502, "retry_after": "x"}
    )
    refused = await token_request(http, emulator.url, {"grant_type": "password"})
    assert refused.status == 502 and refused.headers["Retry-After"] == "x"
    bad = await control(
        http, emulator.url, "fail", {"surface": "rest", "retry_after": "1\r\nX-Injected: 1"}
    )
    assert bad.status == 400


async def test_fail_from_the_kth_matching_request(
    emulator: RunningEmulator, org: OrgClient, http: aiohttp.ClientSession
) -> None:
    await org.create_many("Account", [{"Name": f"A{i}"} for i in range(5)])
    armed = await control(
        http,
        emulator.url,
        "fail",
        {"surface": "rest", "status": 500, "after": 3, "match": "/query"},
    )
    assert armed.body == {
        "armed": {
            "rest": {"fail_count": 1, "fail_status": 500, "fail_after": 3, "fail_match": "/query"}
        }
    }
    first = await org.query("SELECT Id FROM Account ORDER BY Id", batch_size=2)
    assert first.status == 200
    assert (await org.call("GET", "limits")).status == 200  # does not match: not counted
    second = await org.call("GET", first.body["nextRecordsUrl"])
    assert second.status == 200
    third = await org.call("GET", second.body["nextRecordsUrl"])
    assert third.status == 500
    again = await org.call("GET", second.body["nextRecordsUrl"])
    assert again.status == 200 and again.body["done"] is True
    listed = await control(http, emulator.url, "fail")
    assert listed.status == 200 and listed.body == {"armed": {}}


async def test_get_fail_lists_pending_faults(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await control(http, emulator.url, "fail", {"surface": "cometd", "count": -1, "status": 502})
    await control(http, emulator.url, "delay", {"surface": "token", "seconds": 0.5})
    async with http.post(f"{emulator.url}/cometd/60.0", json=[]) as refused:
        assert refused.status == 502
    listed = await control(http, emulator.url, "fail")
    assert listed.body == {
        "armed": {
            "cometd": {"fail_count": -1, "fail_status": 502, "fail_given": 1},
            "token": {"delay_count": 1, "delay_s": 0.5},
        }
    }
    assert (
        await control(http, emulator.url, "fail", {"surface": "rest", "after": 0})
    ).status == 400


# -- POST /_emulator/query {"ties": ...} ----------------------------------------------------


async def test_reversed_ties_come_in_reversed_id_order_unless_the_query_breaks_them(
    emulator: RunningEmulator, org: OrgClient, http: aiohttp.ClientSession
) -> None:
    await control(http, emulator.url, "modstamp", {"freeze_at": "2026-01-01T00:00:00Z"})
    ids = await org.create_many("Account", [{"Name": f"T{i}"} for i in range(6)])
    shown = await control(http, emulator.url, "query", {"ties": "reversed"})
    assert shown.body == {"ties": "reversed"}
    by_stamp = await org.query("SELECT Id FROM Account ORDER BY SystemModstamp", batch_size=4)
    rest = await org.call("GET", by_stamp.body["nextRecordsUrl"])
    read = [row["Id"] for row in by_stamp.body["records"] + rest.body["records"]]
    assert read == ids[::-1]
    by_stamp_and_id = await org.query("SELECT Id FROM Account ORDER BY SystemModstamp, Id")
    assert [row["Id"] for row in by_stamp_and_id.body["records"]] == ids
    await control(http, emulator.url, "query", {"ties": "insertion"})
    assert (await control(http, emulator.url, "query")).body == {"ties": "insertion"}
    plain = await org.query("SELECT Id FROM Account ORDER BY SystemModstamp")
    assert [row["Id"] for row in plain.body["records"]] == ids
    bad = await control(http, emulator.url, "query", {"ties": "random"})
    assert bad.status == 400


async def test_query_batch_size_setting_makes_small_pages_without_asking(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    settings = EmulatorSettings(state_dir=tmp_path / "small", query_batch_size=2)
    small, runner = await start_emulator(settings)
    try:
        org = await OrgClient.login(http, small.url)
        await org.create_many("Account", [{"Name": f"P{i}"} for i in range(3)])
        first = await org.query("SELECT Id FROM Account")
        assert len(first.body["records"]) == 2 and first.body["done"] is False
        asked = await org.query("SELECT Id FROM Account", batch_size=5)
        assert len(asked.body["records"]) == 3
    finally:
        await runner.cleanup()
