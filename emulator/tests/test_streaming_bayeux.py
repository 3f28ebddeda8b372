"""The Bayeux envelope over real HTTP: handshake, connect, advice, auth, clients, faults."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from emulator.tests.streaming_helpers import JSON_CONTENT_TYPE, Bayeux, cookie_jar
from sftriggerd_emulator.context import EmulatorSettings
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient, control

TIMEOUT_MS = 2000
UNKNOWN_CLIENT_ADVICE = {"interval": 0, "reconnect": "handshake"}


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


async def test_handshake_answers_salesforce_shape_and_sets_cookies(bayeux: Bayeux) -> None:
    answer = await bayeux.send(
        {
            "channel": "/meta/handshake",
            "version": "1.0",
            "minimumVersion": "1.0",
            "supportedConnectionTypes": ["websocket", "long-polling"],
            "id": "0",
        }
    )
    assert answer.status == 200
    assert answer.headers["Content-Type"] == JSON_CONTENT_TYPE
    [reply] = answer.body
    client_id = reply.pop("clientId")
    assert len(client_id) == 26 and client_id.isalnum() and client_id.lower() == client_id
    assert reply == {
        "ext": {"replay": True, "payload.format": True},
        "minimumVersion": "1.0",
        "supportedConnectionTypes": ["long-polling"],
        "channel": "/meta/handshake",
        "id": "0",
        "version": "1.0",
        "successful": True,
    }
    cookies = {cookie.key for cookie in bayeux.http.cookie_jar}
    assert {"BAYEUX_BROWSER", "sfdc-stream"} <= cookies


async def test_first_connect_is_immediate_with_advice_and_later_ones_are_held(
    bayeux: Bayeux,
) -> None:
    await bayeux.handshake()
    started = time.monotonic()
    [first] = await bayeux.replies(
        {
            "channel": "/meta/connect",
            "clientId": bayeux.client_id,
            "connectionType": "long-polling",
            "id": 7,
        }
    )
    assert time.monotonic() - started < 0.5
    assert first == {
        "clientId": bayeux.client_id,
        "channel": "/meta/connect",
        "id": 7,  # echoed with its JSON type
        "successful": True,
        "advice": {"interval": 0, "timeout": TIMEOUT_MS, "reconnect": "retry"},
    }
    started = time.monotonic()
    [held] = await bayeux.connect()
    waited = time.monotonic() - started
    assert TIMEOUT_MS / 1000 - 0.2 <= waited < TIMEOUT_MS / 1000 + 1.5
    assert held == {
        "clientId": bayeux.client_id,
        "channel": "/meta/connect",
        "id": held["id"],
        "successful": True,
    }


async def test_held_connect_returns_events_in_the_same_array(
    bayeux: Bayeux, org: OrgClient
) -> None:
    await bayeux.start("/data/AccountChangeEvent")
    poll = asyncio.create_task(bayeux.connect())
    await asyncio.sleep(0.3)
    assert not poll.done()
    started = time.monotonic()
    record_id = await org.create("Account", {"Name": "Held"})
    replies = await poll
    assert time.monotonic() - started < 1.0
    assert [reply["channel"] for reply in replies] == [
        "/data/AccountChangeEvent",
        "/meta/connect",
    ]
    assert replies[0]["data"]["payload"]["ChangeEventHeader"]["recordIds"] == [record_id]
    assert replies[1]["successful"] is True and "advice" not in replies[1]


async def test_batched_connect_and_subscribes_are_all_answered(
    bayeux: Bayeux, org: OrgClient
) -> None:
    await org.create("Account", {"Name": "Before"})
    await bayeux.handshake()
    replies = await bayeux.replies(
        bayeux.connect_message(),
        bayeux.subscribe_message("/data/AccountChangeEvent", -2),
        bayeux.subscribe_message("/data/ContactChangeEvent"),
    )
    channels = [reply["channel"] for reply in replies]
    assert channels == [
        "/meta/subscribe",
        "/meta/subscribe",
        "/data/AccountChangeEvent",
        "/meta/connect",
    ]
    assert all(reply.get("successful", True) for reply in replies)
    assert replies[0]["subscription"] == "/data/AccountChangeEvent"
    assert replies[3]["advice"]["reconnect"] == "retry"


async def test_message_type_suffix_urls_are_served(bayeux: Bayeux) -> None:
    [reply] = await bayeux.replies(bayeux.handshake_message(), suffix="/handshake")
    bayeux.client_id = reply["clientId"]
    [ack] = await bayeux.replies(bayeux.connect_message(), suffix="/connect")
    assert ack["successful"] is True


async def test_form_encoded_messages_are_accepted(
    emulator: RunningEmulator, cometd_http: aiohttp.ClientSession, org: OrgClient
) -> None:
    message = json.dumps([{"channel": "/meta/handshake", "version": "1.0", "id": "1"}])
    async with cometd_http.post(
        f"{emulator.url}/cometd/60.0",
        data={"message": message},
        headers={"Authorization": f"OAuth {org.token}"},
    ) as response:
        assert response.status == 200
        [reply] = await response.json()
    assert reply["successful"] is True


async def test_version_missing_or_too_old_is_refused(
    emulator: RunningEmulator, cometd_http: aiohttp.ClientSession, org: OrgClient
) -> None:
    headers = {"Authorization": f"Bearer {org.token}"}
    body = [{"channel": "/meta/handshake", "version": "1.0", "id": "1"}]
    for path, text in (
        ("/cometd", "API version in the URI is mandatory. URI format: '/cometd/"),
        ("/cometd/36.0", "Unsupported API version. Only API versions '37.0' and later are"),
        ("/cometd/replay/45.0", "Unsupported API version."),
    ):
        async with cometd_http.post(emulator.url + path, json=body, headers=headers) as response:
            assert response.status == 400, path
            assert (await response.text()).startswith(text), path


async def test_oversized_body_gets_413(bayeux: Bayeux) -> None:
    message = bayeux.handshake_message() | {"padding": "x" * 33_000}
    answer = await bayeux.send(message)
    assert answer.status == 413
    assert answer.body == "Maximum Request Size Exceeded"


async def test_no_authorization_header(bayeux: Bayeux) -> None:
    await bayeux.handshake()
    bayeux.token = None
    [denied] = await bayeux.replies(bayeux.handshake_message())
    assert denied == {
        "ext": {"sfdc": {"failureReason": "401::Request requires authentication"}},
        "advice": {"reconnect": "none"},
        "channel": "/meta/handshake",
        "id": denied["id"],
        "error": "403::Handshake denied",
        "successful": False,
    }
    [refused] = await bayeux.replies(bayeux.connect_message())
    assert refused["error"] == "401::Request requires authentication"
    assert refused["advice"] == {"reconnect": "none", "interval": 0}
    assert refused["successful"] is False


async def test_expired_session_on_connect_then_on_handshake(
    bayeux: Bayeux, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await bayeux.start()
    expired = await control(http, emulator.url, "sessions/expire", {})
    assert expired.body["expired"] >= 1
    [refused] = await bayeux.replies(bayeux.connect_message())
    assert refused == {
        "clientId": bayeux.client_id,
        "channel": "/meta/connect",
        "id": refused["id"],
        "advice": {"reconnect": "none", "interval": 0},
        "error": "401::Authentication invalid",
        "successful": False,
    }
    [denied] = await bayeux.replies(bayeux.handshake_message())
    assert denied["error"] == "403::Handshake denied"
    assert denied["ext"] == {"sfdc": {"failureReason": "401::Authentication invalid"}}
    assert denied["advice"] == {"reconnect": "none"}


async def test_session_expiring_during_a_held_connect_ends_it(
    bayeux: Bayeux, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await bayeux.start()
    poll = asyncio.create_task(bayeux.connect())
    await asyncio.sleep(0.2)
    await control(http, emulator.url, "sessions/expire", {})
    [refused] = await asyncio.wait_for(poll, TIMEOUT_MS / 1000)
    assert refused["error"] == "401::Authentication invalid"


async def test_unknown_client_after_forget(
    bayeux: Bayeux, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await bayeux.start("/data/ChangeEvents")
    forgotten = await control(http, emulator.url, "clients/forget", {})
    assert forgotten.body == {"forgotten": 1}
    [refused] = await bayeux.replies(bayeux.connect_message())
    # Salesforce's reply names no clientId but keeps the id.
    assert refused == {
        "channel": "/meta/connect",
        "id": refused["id"],
        "advice": UNKNOWN_CLIENT_ADVICE,
        "error": "403::Unknown client",
        "successful": False,
    }
    [refused_subscribe] = await bayeux.replies(bayeux.subscribe_message("/data/ChangeEvents"))
    assert refused_subscribe["error"] == "403::Unknown client"
    assert "clientId" not in refused_subscribe


async def test_forget_answers_a_held_connect_with_unknown_client(
    bayeux: Bayeux, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await bayeux.start()
    poll = asyncio.create_task(bayeux.connect())
    await asyncio.sleep(0.2)
    await control(http, emulator.url, "clients/forget", {})
    [refused] = await asyncio.wait_for(poll, 1.0)
    assert refused["error"] == "403::Unknown client"
    assert refused["advice"] == UNKNOWN_CLIENT_ADVICE


async def test_client_expires_without_a_connect(
    bayeux: Bayeux, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await bayeux.start()
    await control(http, emulator.url, "clock", {"advance_s": 41})
    [refused] = await bayeux.replies(bayeux.connect_message())
    assert refused["error"] == "403::Unknown client"
    assert refused["advice"] == UNKNOWN_CLIENT_ADVICE


async def test_a_new_handshake_drops_subscriptions(bayeux: Bayeux, org: OrgClient) -> None:
    await bayeux.start("/data/AccountChangeEvent")
    first_client = bayeux.client_id
    await bayeux.handshake()
    assert bayeux.client_id != first_client
    await bayeux.connect()
    await org.create("Account", {"Name": "Nobody listens"})
    assert await bayeux.events() == []


async def test_concurrent_client_limit_denies_the_handshake(
    emulator: RunningEmulator, bayeux: Bayeux
) -> None:
    emulator.ctx.settings.max_cometd_clients = 2
    # Re-handshaking without disconnecting leaks clients until they expire, as on Salesforce.
    await bayeux.handshake()
    await bayeux.handshake()
    [denied] = await bayeux.replies(bayeux.handshake_message())
    assert denied == {
        "ext": {
            "sfdc": {"failureReason": "403::Organization concurrent user limit exceeded"},
            "replay": True,
            "payload.format": True,
        },
        "advice": {"reconnect": "none"},
        "channel": "/meta/handshake",
        "id": denied["id"],
        "error": "403::Handshake denied",
        "successful": False,
    }
    await bayeux.replies({"channel": "/meta/disconnect", "clientId": bayeux.client_id, "id": "x"})
    await bayeux.handshake()


async def test_missing_browser_cookie_is_refused(emulator: RunningEmulator, org: OrgClient) -> None:
    # aiohttp's default jar refuses cookies from an IP host: the client keeps none.
    async with aiohttp.ClientSession() as plain:
        client = Bayeux(plain, emulator.url, org.token)
        await client.handshake()
        [refused] = await client.replies(client.connect_message())
    assert refused["error"] == (
        f"400::Client {client.client_id} has established a session, but no BAYEUX_BROWSER"
        " cookie present"
    )
    assert refused["successful"] is False


async def test_connection_type_must_be_long_polling(bayeux: Bayeux) -> None:
    await bayeux.handshake()
    message = bayeux.connect_message() | {"connectionType": "websocket"}
    [refused] = await bayeux.replies(message)
    assert refused["error"] == "400::Invalid connection type {websocket}"


async def test_disconnect_forgets_the_client(bayeux: Bayeux) -> None:
    await bayeux.start()
    [reply] = await bayeux.replies(
        {"channel": "/meta/disconnect", "clientId": bayeux.client_id, "id": "9"}
    )
    assert reply == {"channel": "/meta/disconnect", "id": "9", "successful": True}
    [refused] = await bayeux.replies(bayeux.connect_message())
    assert refused["error"] == "403::Unknown client"


async def test_publishing_over_cometd_is_denied(bayeux: Bayeux) -> None:
    await bayeux.start()
    [reply] = await bayeux.replies(
        {"channel": "/event/Foo__e", "clientId": bayeux.client_id, "data": {}, "id": "5"}
    )
    assert reply["successful"] is False
    assert reply["error"] == "403::Publish denied"


async def test_injected_cometd_failure_answers_non_json(
    bayeux: Bayeux, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await bayeux.start()
    await control(http, emulator.url, "fail", {"surface": "cometd", "count": 2, "status": 503})
    for _ in range(2):
        answer = await bayeux.send(bayeux.connect_message())
        assert answer.status == 503
        assert answer.headers["Content-Type"].startswith("text/html")
    replies = await bayeux.replies(bayeux.connect_message())
    assert replies[-1]["successful"] is True


async def test_cut_drops_held_connects(
    bayeux: Bayeux, emulator: RunningEmulator, http: aiohttp.ClientSession, org: OrgClient
) -> None:
    await bayeux.start("/data/AccountChangeEvent")
    poll = asyncio.create_task(bayeux.send(bayeux.connect_message()))
    await asyncio.sleep(0.2)
    cut = await control(http, emulator.url, "cometd/cut", {})
    assert cut.body == {"cut": 1, "mode": "drop"}
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await poll
    # The client survives a cut poll; what was published meanwhile is still delivered.
    record_id = await org.create("Account", {"Name": "After the cut"})
    events = await bayeux.events()
    assert [e["data"]["payload"]["ChangeEventHeader"]["recordIds"] for e in events] == [[record_id]]


async def test_cut_with_http_500(
    bayeux: Bayeux, emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await bayeux.start()
    poll = asyncio.create_task(bayeux.send(bayeux.connect_message()))
    await asyncio.sleep(0.2)
    await control(http, emulator.url, "cometd/cut", {"mode": "500"})
    answer = await poll
    assert answer.status == 500
    assert isinstance(answer.body, str) and answer.body.startswith("<html>")


async def test_stats_count_streaming_calls(
    bayeux: Bayeux, emulator: RunningEmulator, http: aiohttp.ClientSession, org: OrgClient
) -> None:
    await bayeux.start("/data/AccountChangeEvent")
    await org.create("Account", {"Name": "Counted"})
    assert len(await bayeux.events()) == 1
    stats = (await control(http, emulator.url, "stats")).body
    assert stats["handshakes"] == 1
    assert stats["connects"] == 2
    assert stats["subscribes"] == 1
    assert stats["events_delivered"] == 1
