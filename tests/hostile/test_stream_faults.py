"""Nothing Salesforce sends ends the streaming source: poison messages, garbage advice,
mistyped fields, a failing token endpoint during a re-login, a client forgotten again and
again. Each fault is followed by what comes after it: the next change, a restart, the next
fault. Real emulator over HTTP (its answers tampered with where a test says so), real SQLite.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sftriggerd.salesforce.cometd import BayeuxClient, TransportError
from sftriggerd.salesforce.session import SalesforceSession
from tests.hostile.stream_tamper import (
    Message,
    Tamper,
    hostile_emulator,
    live_clients,
    stat,
    streaming_rig,
    tamper,
)
from tests.integration.streaming_rig import StreamingRig
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient, control
from tests.support.waiting import eventually

__all__ = ["hostile_emulator", "tamper"]  # the tamper rig's fixtures

ORDERS = "/event/Order_Placed__e"


async def publish(http: aiohttp.ClientSession, url: str, payload: dict[str, Any]) -> int:
    answer = await control(http, url, "events/Order_Placed__e", {"payload": payload})
    assert answer.status == 200, answer.body
    return int(answer.body["replayId"])


def poison_count(rig: StreamingRig) -> float:
    trigger = rig.source.trigger.name
    value = rig.metrics.registry.get_sample_value(
        "sftriggerd_poison_events_total", {"trigger": trigger}
    )
    return value or 0.0


def bad_created_date(message: Message) -> Message:
    """Platform events whose `Amount__c` is even carry a CreatedDate that is no time."""
    payload = message["data"]["payload"]
    if payload.get("Amount__c", 1) % 2 == 0:
        payload["CreatedDate"] = 12 if payload["Amount__c"] == 2 else ["nope"]
    return message


async def test_a_poison_message_among_good_ones_is_kept_and_passed(
    hostile_emulator: RunningEmulator,
    tamper: Tamper,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    url = hostile_emulator.url
    tamper.rewrite_data = bad_created_date
    orders = {"name": "orders", "object": None, "channel": ORDERS}
    rig = await streaming_rig(hostile_emulator, http, tmp_path, **orders)
    rig.start()
    await rig.connected()
    await publish(http, url, {"Amount__c": 1})
    await publish(http, url, {"Amount__c": 2})  # its CreatedDate is not a time: poison
    await publish(http, url, {"Amount__c": 3})
    await rig.wait_events(2)
    assert [e.record["Amount__c"] for e in rig.ingest.new] == [1, 3]
    poison = await rig.store.list_poison("orders")
    assert len(poison) == 1 and '"Amount__c": 2' in poison[0].message and poison[0].reason
    assert poison_count(rig) == 1 and not rig.task.done()  # type: ignore[union-attr]
    await rig.stop()

    # A restart right after: nothing replayed (the position moved past the poison) ...
    again = await streaming_rig(hostile_emulator, http, tmp_path, rig=rig, **orders)
    again.start()
    await again.connected()
    # ... and the next poison message is kept the same way, the next good one delivered.
    await publish(http, url, {"Amount__c": 4})
    await publish(http, url, {"Amount__c": 5})
    await again.wait_events(1)
    assert [e.record["Amount__c"] for e in again.ingest.new] == [5]
    assert len(await again.store.list_poison("orders")) == 2
    await again.stop()
    await again.store.close()


def garbage_header(message: Message) -> Message:
    """Mistyped header fields, chosen by the record's Name."""
    data = message["data"]
    name = data.get("payload", {}).get("Name")
    if name == "bad time":
        data["payload"]["ChangeEventHeader"]["commitTimestamp"] = "yesterday"
    if name == "no replay id":
        data["event"]["replayId"] = "12"
    return message


async def test_garbage_advice_and_mistyped_fields_do_not_stop_the_stream(
    hostile_emulator: RunningEmulator,
    tamper: Tamper,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    tamper.meta_fields = {
        "advice": {"interval": "soon", "timeout": 1e308, "reconnect": ["retry"]},
        "ext": {"sfdc": "not an object"},
        "supportedConnectionTypes": 7,
    }
    tamper.rewrite_data = garbage_header
    rig = await streaming_rig(hostile_emulator, http, tmp_path)
    rig.start()
    await rig.connected()
    org = await OrgClient.login(http, hostile_emulator.url)
    good = await org.create("Account", {"Name": "good"})
    await org.create("Account", {"Name": "bad time"})
    unplaced = await org.create("Account", {"Name": "no replay id"})
    await rig.wait_events(2)
    # The message without a replay id is stored; the position stays at the poison's.
    assert rig.changes() == [("created", good), ("created", unplaced)]
    assert rig.ingest.new[1].source["replay_id"] is None
    poisoned = tamper.rewritten[1]["data"]
    assert poisoned["payload"]["Name"] == "bad time"
    assert rig.source.status.checkpoint == f"replay_id {poisoned['event']['replayId']}"
    assert len(await rig.store.list_poison("accounts")) == 1
    assert rig.source.status.connected and not rig.task.done()  # type: ignore[union-attr]

    # The next garbage: advice that is not an object at all, and negative numbers.
    tamper.meta_fields = {"advice": "garbage"}
    after = await org.create("Account", {"Name": "after"})
    await rig.wait_events(3)
    tamper.meta_fields = {"advice": {"interval": -5, "timeout": -1}}
    last = await org.create("Account", {"Name": "last"})
    await rig.wait_events(4)
    assert rig.changes()[2:] == [("created", after), ("created", last)]
    await rig.stop()
    await rig.store.close()


async def test_a_failing_token_endpoint_during_a_relogin_is_retried(
    hostile_emulator: RunningEmulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    url = hostile_emulator.url
    rig = await streaming_rig(hostile_emulator, http, tmp_path)
    # Two attempts per login, so five 503s span three rounds of the streaming loop.
    rig.client.session = SalesforceSession(
        rig.client._settings, http, rig.metrics, login_attempts=2, backoff_base_s=0.01
    )
    rig.start()
    await rig.connected()
    logins = rig.client.session.logins
    await control(http, url, "fail", {"surface": "token", "count": 5, "status": 503})
    await control(http, url, "sessions/expire", {})
    await eventually(lambda: rig.client.session.logins > logins, timeout_s=10)
    await rig.connected()
    assert rig.faults("login_failed") >= 2 and not rig.task.done()  # type: ignore[union-attr]
    org = await OrgClient.login(http, url)
    record = await org.create("Account", {"Name": "after the 503s"})
    await rig.wait_events(1)
    assert rig.changes() == [("created", record)]
    await rig.stop()

    # A restart right after the recovery resumes from the stored position ...
    while_down = await org.create("Account", {"Name": "while down"})
    again = await streaming_rig(hostile_emulator, http, tmp_path, rig=rig)
    again.start()
    await again.wait_events(1)
    # ... and the next expiry, with a healthy token endpoint, is one quick re-login.
    await control(http, url, "sessions/expire", {})
    org = await OrgClient.login(http, url)
    record = await org.create("Account", {"Name": "after the next expiry"})
    await again.wait_events(2)
    assert again.changes() == [("created", while_down), ("created", record)]
    await again.stop()
    await again.store.close()


async def test_a_client_forgotten_again_and_again_backs_off(
    hostile_emulator: RunningEmulator,
    tamper: Tamper,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    rig = await streaming_rig(hostile_emulator, http, tmp_path, backoff_cap_s=1.0)
    rig.start()
    await rig.connected()
    handshakes = await stat(http, hostile_emulator, "handshakes")
    tamper.refuse_connects = True
    await eventually(lambda: tamper.refused >= 1, timeout_s=10)
    started = time.monotonic()
    await eventually(lambda: tamper.refused >= 5, timeout_s=10)
    # Immediate once, then at least 0.25 s, 0.5 s, 0.5 s (equal jitter): never a burst.
    assert time.monotonic() - started >= 1.2
    assert await stat(http, hostile_emulator, "handshakes") - handshakes <= tamper.refused + 1
    assert await live_clients(http, hostile_emulator) <= 1  # each old client disconnected
    assert not rig.task.done()  # type: ignore[union-attr]

    # The server is well again: the loop comes back within its cap ...
    tamper.refuse_connects = False
    await rig.connected(timeout_s=5)
    org = await OrgClient.login(http, hostile_emulator.url)
    record = await org.create("Account", {"Name": "after the loop"})
    await rig.wait_events(1)
    # ... and the next forgotten client is a routine, single, immediate re-handshake.
    before = await stat(http, hostile_emulator, "handshakes")
    await control(http, hostile_emulator.url, "clients/forget", {})
    next_record = await org.create("Account", {"Name": "after the forget"})
    await rig.wait_events(2)
    assert await stat(http, hostile_emulator, "handshakes") - before == 1
    assert rig.changes() == [("created", record), ("created", next_record)]
    await rig.stop()

    # A restart right after: what changed while down arrives.
    while_down = await org.create("Account", {"Name": "while down"})
    again = await streaming_rig(hostile_emulator, http, tmp_path, rig=rig)
    again.start()
    await again.wait_events(1)
    assert again.changes() == [("created", while_down)]
    await again.stop()
    await again.store.close()


async def test_an_unknown_client_on_subscribe_is_not_an_unavailable_channel(
    hostile_emulator: RunningEmulator,
    tamper: Tamper,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    tamper.refuse_subscribes = 1
    rig = await streaming_rig(hostile_emulator, http, tmp_path, mode="auto")
    rig.source.fall_back = True  # as `mode: auto` sets it: unavailable would end `run`
    rig.start()
    await rig.connected()
    assert tamper.refused == 1 and rig.faults("rehandshake") == 1
    assert rig.faults("channel_unavailable") == 0 and not rig.task.done()  # type: ignore[union-attr]
    org = await OrgClient.login(http, hostile_emulator.url)
    record = await org.create("Account", {"Name": "subscribed after all"})
    await rig.wait_events(1)
    assert rig.changes() == [("created", record)]
    await rig.stop()
    await rig.store.close()


async def test_a_proxy_password_never_reaches_the_error_text() -> None:
    """aiohttp names the proxy URL, password and all, when the proxy refuses a tunnel."""

    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=404, text="no tunnel here")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    proxy = f"http://bob:pw-Zq9@127.0.0.1:{runner.addresses[0][1]}"

    async def authorization() -> str:
        return "Bearer unused"

    try:
        async with aiohttp.ClientSession() as session:
            client = BayeuxClient(
                session, "https://127.0.0.1:9/cometd/60.0", authorization, proxy=proxy
            )
            with pytest.raises(TransportError) as caught:
                await client.handshake()
    finally:
        await runner.cleanup()
    assert "pw-Zq9" in str(caught.value.__cause__)  # what aiohttp said
    assert "pw-Zq9" not in str(caught.value) and "bob" not in str(caught.value)
