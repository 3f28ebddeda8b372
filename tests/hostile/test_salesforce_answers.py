"""Salesforce answers a client must survive, over the real wire: a scripted local server for
the answers the emulator cannot give, and the emulator's fault injection where it can."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import traceback
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sftriggerd.config.settings import SalesforceSettings
from sftriggerd.errors import AuthenticationError, SalesforceError, SftriggerdError
from sftriggerd.metrics import Metrics
from sftriggerd.salesforce.answers import MalformedAnswerError, SalesforceUnavailable
from sftriggerd.salesforce.client import RetryPolicy, SalesforceClient
from sftriggerd.salesforce.session import SalesforceSession
from sftriggerd.salesforce.soql import SoqlValueError
from tests.integration.streaming_rig import make_streaming_rig
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient, control

FAST = RetryPolicy(attempts=5, base_s=0.01, cap_s=0.05, timeout_s=5, max_wait_s=3)
PASSWORD = "Pw-Zq9-proxy-secret"
EMPTY = {"totalSize": 0, "done": True, "records": []}


@dataclass
class Scripted:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def answer(status: int, value: Any = None, **headers: str) -> Scripted:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return Scripted(status, raw, {"Content-Type": "application/json", **headers})


@dataclass
class ScriptedOrg:
    """A token endpoint and REST answers taken from scripts, then a steady default."""

    url: str = ""
    instance_url: str = ""  # what the token answer names; defaults to this server
    tokens: list[Scripted] = field(default_factory=list)
    rest: list[Scripted] = field(default_factory=list)
    seen: list[tuple[float, str]] = field(default_factory=list)

    async def token(self, request: web.Request) -> web.Response:
        self.seen.append((time.monotonic(), "token"))
        if self.tokens:
            return self._respond(self.tokens.pop(0))
        grant = {"access_token": "00D!scripted", "instance_url": self.instance_url or self.url}
        return web.json_response(grant)

    async def data(self, request: web.Request) -> web.Response:
        self.seen.append((time.monotonic(), request.path_qs))
        return self._respond(self.rest.pop(0) if self.rest else answer(200, EMPTY))

    @staticmethod
    def _respond(scripted: Scripted) -> web.Response:
        return web.Response(status=scripted.status, body=scripted.body, headers=scripted.headers)

    def times(self, kind: str = "/services/data") -> list[float]:
        return [at for at, what in self.seen if what.startswith(kind)]


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedOrg]:
    org = ScriptedOrg()
    app = web.Application()
    app.router.add_post("/services/oauth2/token", org.token)
    app.router.add_route("*", "/services/data/{tail:.*}", org.data)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    org.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield org
    await runner.cleanup()


def settings_for(
    login_url: str, proxy: str | None = None, password: str = "emulator"
) -> SalesforceSettings:
    auth = {
        "flow": "password",
        "client_id": "emulator-client",
        "client_secret": "emulator-secret",
        "username": "admin@emulator.local",
        "password": password,
    }
    return SalesforceSettings.model_validate(
        {"login_url": login_url, "auth": auth, "proxy": proxy, "api_budget": 0.5}
    )


def make_client(
    http: aiohttp.ClientSession,
    login_url: str,
    *,
    proxy: str | None = None,
    retry: RetryPolicy = FAST,
    login_attempts: int = 2,
) -> SalesforceClient:
    settings = settings_for(login_url, proxy)
    metrics = Metrics()
    session = SalesforceSession(
        settings, http, metrics, login_attempts=login_attempts, backoff_base_s=0.01
    )
    return SalesforceClient(settings, http, metrics, session=session, retry=retry)


def login_attempts(client: SalesforceClient) -> float:
    value = client.metrics.registry.get_sample_value(
        "sftriggerd_salesforce_api_calls_total", {"kind": "login"}
    )
    return value or 0.0


# -- Retry-After and 5xx ------------------------------------------------------------------


async def test_retry_after_is_waited_before_the_next_attempt(
    scripted: ScriptedOrg, http: aiohttp.ClientSession
) -> None:
    scripted.rest = [answer(503, [{"errorCode": "SERVER_UNAVAILABLE"}], **{"Retry-After": "1"})]
    client = make_client(http, scripted.url)
    assert await client.count("SELECT COUNT() FROM Account") == 0
    first, second = scripted.times()
    assert second - first >= 0.95  # the jittered schedule alone waits at most 0.05 s


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(
    "retry_after",
    ["²", "9" * 5000, "-5", "1e3", "soon", "Mon, 99 Foo 2026", "Fri, 31 Dec 9999 23:59:59 GMT"],
)
async def test_an_unusable_or_huge_retry_after_is_bounded_and_the_call_recovers(
    scripted: ScriptedOrg, http: aiohttp.ClientSession, status: int, retry_after: str
) -> None:
    scripted.rest = [answer(status, b"busy", **{"Retry-After": retry_after})]
    client = make_client(http, scripted.url, retry=RetryPolicy(5, 0.01, 0.05, 5, max_wait_s=0.2))
    assert await client.count("SELECT COUNT() FROM Account") == 0
    first, second = scripted.times()
    assert second - first < 1.0


async def test_server_errors_then_success(
    scripted: ScriptedOrg, http: aiohttp.ClientSession
) -> None:
    scripted.rest = [
        answer(500, [{"errorCode": "UNKNOWN_EXCEPTION", "message": "boom"}]),
        Scripted(502, b"<html>Bad gateway</html>", {"Content-Type": "text/html"}),
        answer(503, b""),
        answer(200, {"totalSize": 7, "done": True, "records": []}),
    ]
    client = make_client(http, scripted.url)
    assert await client.count("SELECT COUNT() FROM Account") == 7
    assert len(scripted.times()) == 4


async def test_a_hostile_usage_header_does_not_fail_the_call(
    scripted: ScriptedOrg, http: aiohttp.ClientSession
) -> None:
    # int() refuses 5,000 digits: the header that carried them must not fail the answer.
    usage = {"Sforce-Limit-Info": "api-usage=" + "9" * 5000 + "/100"}
    scripted.rest = [answer(200, {**EMPTY, "totalSize": 3}, **usage)]
    client = make_client(http, scripted.url)
    assert await client.count("SELECT COUNT() FROM Account") == 3
    assert client.budget.usage is None


# -- malformed bodies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b"<html>Down for maintenance</html>",
        b"\xff\xfe{not utf-8",
        b'{"records": [], "totalSize": "abc"}',
        b'{"records": [], "totalSize": 1e999}',
        b'{"records": [1, {"Id": "001000000000001AAA"}], "done": true}',
        b'{"records": [], "done": "false"}',
        b'{"records": [], "done": false, "nextRecordsUrl": 5}',
        b'{"records": [], "done": false, "nextRecordsUrl": "https://elsewhere.example/x"}',
        b'{"done": true}',
    ],
)
async def test_a_malformed_query_answer_is_a_documented_error(
    scripted: ScriptedOrg, http: aiohttp.ClientSession, body: bytes
) -> None:
    scripted.rest = [answer(200, body)]
    client = make_client(http, scripted.url)
    with pytest.raises(MalformedAnswerError):
        _ = [page async for page in client.query_pages("SELECT Id FROM Account")]
    assert len(scripted.times()) == 1  # nothing sent to where a bad next-page URL points


async def test_a_malformed_object_answer_is_a_documented_error(
    scripted: ScriptedOrg, http: aiohttp.ClientSession
) -> None:
    scripted.rest = [answer(200, [{"fields": []}])]
    client = make_client(http, scripted.url)
    with pytest.raises(MalformedAnswerError, match="expected a JSON object"):
        await client.describe("Account")


@pytest.mark.parametrize(
    "grant",
    [
        {"access_token": "00D!x"},
        {"access_token": "00D!x", "instance_url": ["https://x"]},
        {"instance_url": "https://x"},
        [{"access_token": "00D!x", "instance_url": "https://x"}],
    ],
)
async def test_a_malformed_token_answer_is_a_documented_error(
    scripted: ScriptedOrg, http: aiohttp.ClientSession, grant: Any
) -> None:
    scripted.tokens = [answer(200, grant)]
    client = make_client(http, scripted.url)
    with pytest.raises(MalformedAnswerError):
        await client.session.token()
    assert await client.count("SELECT COUNT() FROM Account") == 0  # the next login works


# -- the token endpoint failing during a re-login -----------------------------------------


async def test_token_5xx_during_a_relogin_recovers_then_the_next_fault_too(
    emulator: RunningEmulator, http: aiohttp.ClientSession, org: OrgClient
) -> None:
    retry = RetryPolicy(attempts=6, base_s=0.02, cap_s=0.05, timeout_s=5)
    client = make_client(http, emulator.url, retry=retry)
    await org.create("Account", {"Name": "One"})
    assert await client.count("SELECT COUNT() FROM Account") == 1
    await control(http, emulator.url, "sessions/expire", {})
    # Three failures outlast the session's two login attempts: the call itself goes on.
    await control(http, emulator.url, "fail", {"surface": "token", "count": 3, "status": 503})
    assert await client.count("SELECT COUNT() FROM Account") == 1
    assert client.session.logins == 2
    # The next faults: REST 5xx, then Salesforce's own "retry your request" on a 400.
    await control(http, emulator.url, "fail", {"surface": "rest", "count": 2, "status": 503})
    assert await client.count("SELECT COUNT() FROM Account") == 1
    await control(http, emulator.url, "sessions/expire", {})
    await control(http, emulator.url, "fail", {"surface": "token", "count": 1, "status": 400})
    assert await client.count("SELECT COUNT() FROM Account") == 1
    assert client.session.logins == 3


async def test_a_token_endpoint_that_stays_down_is_unavailable_not_a_refusal(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    client = make_client(http, emulator.url)
    await control(http, emulator.url, "fail", {"surface": "token", "count": -1, "status": 500})
    with pytest.raises(SalesforceUnavailable, match="failed 5 times: token endpoint"):
        await client.count("SELECT COUNT() FROM Account")
    await control(http, emulator.url, "fail", {"surface": "token", "count": 0})
    assert await client.count("SELECT COUNT() FROM Account") == 0


async def test_concurrent_waiters_share_one_failed_login_then_one_good_one(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    client = make_client(http, emulator.url)
    await control(http, emulator.url, "fail", {"surface": "token", "count": -1, "status": 503})
    results = await asyncio.gather(
        *(client.session.token() for _ in range(20)), return_exceptions=True
    )
    assert all(isinstance(result, SalesforceUnavailable) for result in results)
    assert login_attempts(client) == 2  # one login of two attempts, not twenty
    await control(http, emulator.url, "fail", {"surface": "token", "count": 0})
    tokens = await asyncio.gather(*(client.session.token() for _ in range(20)))
    assert len({id(token) for token in tokens}) == 1
    assert client.session.logins == 1 and login_attempts(client) == 3


async def test_a_cancelled_waiter_does_not_cancel_the_shared_login(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    client = make_client(http, emulator.url)
    await control(http, emulator.url, "delay", {"surface": "token", "seconds": 0.3})
    first = asyncio.create_task(client.session.token())
    others = [asyncio.create_task(client.session.token()) for _ in range(3)]
    await asyncio.sleep(0.05)  # every waiter is now parked on the one login
    first.cancel()
    tokens = await asyncio.gather(*others)
    assert first.cancelled() and all(token is tokens[0] for token in tokens)
    assert client.session.logins == 1


async def test_a_refused_login_is_shared_and_stays_a_refusal(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    settings = settings_for(emulator.url, password="wrong")
    session = SalesforceSession(settings, http, Metrics(), login_attempts=3)
    results = await asyncio.gather(*(session.token() for _ in range(5)), return_exceptions=True)
    assert all(isinstance(result, AuthenticationError) for result in results)
    assert all(result is results[0] for result in results)


# -- secrets in error text ----------------------------------------------------------------


def _all_text(error: BaseException) -> str:
    return str(error) + "".join(traceback.format_exception(error))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_a_refused_proxy_never_shows_its_password(
    scripted: ScriptedOrg, http: aiohttp.ClientSession
) -> None:
    proxy = f"http://bob:{PASSWORD}@127.0.0.1:{closed_port()}"
    client = make_client(http, scripted.url, proxy=proxy)
    with pytest.raises(SalesforceUnavailable) as caught:
        await client.count("SELECT COUNT() FROM Account")
    assert "Cannot connect" in str(caught.value)
    assert PASSWORD not in _all_text(caught.value)


class TunnelRefusingProxy:
    """Forwards plain HTTP for whoever sends the right credentials; refuses every CONNECT
    tunnel with 407, as a proxy does whose policy requires other credentials for TLS."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None

    def url(self, password: str) -> str:
        return f"http://bob:{password}@127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ")
            fields = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
            fields = {name.strip().lower(): value.strip() for name, value in fields.items()}
            if method == "CONNECT" or "proxy-authorization" not in fields:
                writer.write(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b"Proxy-Authenticate: Basic\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
            else:
                body = await reader.readexactly(int(fields.get("content-length", "0")))
                writer.write(await self._forward(method, target, fields, body))
            await writer.drain()
        writer.close()

    @staticmethod
    async def _forward(method: str, target: str, fields: dict[str, str], body: bytes) -> bytes:
        passed = {k: v for k, v in fields.items() if not k.startswith("proxy-")}
        async with aiohttp.ClientSession() as upstream:
            async with upstream.request(method, target, headers=passed, data=body) as response:
                content = await response.read()
                head = f"HTTP/1.1 {response.status} {response.reason}\r\n"
                head += f"Content-Type: {response.content_type}\r\n"
                head += f"Content-Length: {len(content)}\r\nConnection: close\r\n\r\n"
                return head.encode() + content


@pytest.fixture
async def tunnel_refusing_proxy() -> AsyncIterator[TunnelRefusingProxy]:
    proxy = TunnelRefusingProxy()
    await proxy.start()
    yield proxy
    await proxy.stop()


async def test_a_proxy_refusing_the_tunnel_never_shows_its_password(
    scripted: ScriptedOrg, http: aiohttp.ClientSession, tunnel_refusing_proxy: TunnelRefusingProxy
) -> None:
    # The login goes through the proxy as plain HTTP; the instance is HTTPS, so every REST
    # call asks for a tunnel, and aiohttp's error for the 407 names the proxy URL.
    scripted.instance_url = f"https://127.0.0.1:{closed_port()}"
    client = make_client(http, scripted.url, proxy=tunnel_refusing_proxy.url(PASSWORD))
    with pytest.raises(SalesforceUnavailable) as caught:
        await client.count("SELECT COUNT() FROM Account")
    assert client.session.logins == 1
    assert "407" in str(caught.value) and "127.0.0.1" in str(caught.value)
    assert PASSWORD not in _all_text(caught.value)


async def test_a_login_through_a_refusing_proxy_never_shows_its_password(
    http: aiohttp.ClientSession, tunnel_refusing_proxy: TunnelRefusingProxy
) -> None:
    https_login = f"https://127.0.0.1:{closed_port()}"
    client = make_client(http, https_login, proxy=tunnel_refusing_proxy.url(PASSWORD))
    with pytest.raises(SalesforceUnavailable) as caught:
        await client.session.token()
    assert "407" in str(caught.value)
    assert PASSWORD not in _all_text(caught.value)
    # Without credentials the proxy answers a plain-HTTP login with 407: a clear refusal.
    plain = make_client(
        http, "http://127.0.0.1:9", proxy=f"http://127.0.0.1:{tunnel_refusing_proxy.port}"
    )
    with pytest.raises(AuthenticationError, match="proxy refused our credentials"):
        await plain.session.token()


# -- the streaming source through a token outage ------------------------------------------


async def test_streaming_survives_a_token_outage_during_its_relogin(
    emulator: RunningEmulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    rig = await make_streaming_rig(emulator.url, http, tmp_path)
    rig.client.session = SalesforceSession(
        settings_for(emulator.url), http, rig.metrics, login_attempts=2, backoff_base_s=0.01
    )
    rig.start()
    task = rig.task
    assert task is not None
    try:
        await rig.connected()
        await control(http, emulator.url, "fail", {"surface": "token", "count": -1, "status": 503})
        await control(http, emulator.url, "sessions/expire", {})
        async with asyncio.timeout(10):  # the positive signal: a re-login met the outage
            while "token endpoint answered HTTP 503" not in (rig.source.status.last_error or ""):
                assert not task.done(), task.result()  # the part must not end
                await asyncio.sleep(0.02)
        await control(http, emulator.url, "fail", {"surface": "token", "count": 0})
        org_again = await OrgClient.login(http, emulator.url)  # its session expired too
        record = await org_again.create("Account", {"Name": "After the outage"})
        await rig.wait_events(1)
        assert rig.changes() == [("created", record)]
    finally:
        await rig.stop()
        await rig.store.close()


def test_unavailable_is_a_salesforce_error() -> None:
    assert issubclass(SalesforceUnavailable, SalesforceError)
    assert issubclass(MalformedAnswerError, SalesforceError)


async def test_a_wildcard_record_id_is_refused_before_any_call(
    scripted: ScriptedOrg, http: aiohttp.ClientSession
) -> None:
    # Salesforce sends `001*` in gap events after a field type change; the refusal is one of
    # ours (a part catches SftriggerdError), not a bare ValueError that would end it.
    client = make_client(http, scripted.url)
    with pytest.raises(SoqlValueError, match="'001\\*' is not a Salesforce record id") as caught:
        await client.get_record("Account", "001*")
    assert isinstance(caught.value, SftriggerdError)
    assert scripted.seen == []
