"""One POST against a real local server: every way it can end is a value."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from sftriggerd.delivery.answers import Answer, Failure
from sftriggerd.delivery.sender import BODY_PREFIX_BYTES, post_webhook
from tests.keys import self_signed_cert
from tests.support.receiver import unused_url

SECOND = timedelta(seconds=1)


async def big(request: web.Request) -> web.StreamResponse:
    return web.Response(status=500, body=b"x" * 100_000, headers={"Retry-After": "7"})


async def moved(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/echo")


async def echo(request: web.Request) -> web.StreamResponse:
    return web.Response(status=200, body=await request.read())


async def slow(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(1)
    return web.Response(status=200)


async def hang_up(request: web.Request) -> web.StreamResponse:
    assert request.transport is not None
    request.transport.close()
    await asyncio.sleep(0.1)
    return web.Response(status=200)


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    app = web.Application()
    for path, handler in [
        ("/big", big),
        ("/moved", moved),
        ("/echo", echo),
        ("/slow", slow),
        ("/hang-up", hang_up),
    ]:
        app.router.add_post(path, handler)
    runner = web.AppRunner(app, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def post(url: str, timeout: timedelta = SECOND) -> Answer | Failure:
    async with aiohttp.ClientSession() as http:
        return await post_webhook(http, url, {"x-test": "1"}, b'{"a":1}', timeout)


async def test_an_answer_carries_status_retry_after_and_a_body_prefix(base_url: str) -> None:
    answer = await post(f"{base_url}/big")
    assert isinstance(answer, Answer)
    assert (answer.status, answer.retry_after, answer.ok) == (500, "7", False)
    assert answer.body == b"x" * BODY_PREFIX_BYTES
    assert answer.duration_s >= 0


async def test_the_body_is_sent_as_given(base_url: str) -> None:
    answer = await post(f"{base_url}/echo")
    assert isinstance(answer, Answer) and answer.ok and answer.body == b'{"a":1}'


async def test_redirects_are_not_followed(base_url: str) -> None:
    answer = await post(f"{base_url}/moved")
    assert isinstance(answer, Answer) and answer.status == 302


async def test_a_slow_endpoint_times_out(base_url: str) -> None:
    failure = await post(f"{base_url}/slow", timeout=timedelta(milliseconds=150))
    assert failure == Failure("timeout", "timeout after 0.15s", failure.duration_s)
    assert 0.1 < failure.duration_s < 0.9


async def test_nobody_listening_is_connection_refused() -> None:
    failure = await post(unused_url())
    assert isinstance(failure, Failure)
    assert (failure.kind, failure.error) == ("refused", "connection refused")


async def test_a_host_name_that_does_not_resolve_is_a_dns_failure() -> None:
    # .invalid is reserved (RFC 2606): no resolver answers it, online or not.
    failure = await post("http://no-such-host.invalid/hook", timeout=5 * SECOND)
    assert isinstance(failure, Failure)
    assert failure.kind == "dns"
    assert failure.error.startswith("DNS lookup failed for no-such-host.invalid: ")


async def test_a_host_the_resolver_cannot_encode_is_a_dns_failure_naming_the_host() -> None:
    # An empty part between dots: the client raises UnicodeError, a ValueError, on it.
    failure = await post("http://user:pw123@hooks..example.com/hook?key=k123")
    assert isinstance(failure, Failure)
    assert failure.kind == "dns"
    assert failure.error.startswith("DNS lookup impossible for hooks..example.com: ")
    assert "pw123" not in failure.error and "k123" not in failure.error


async def test_a_self_signed_certificate_fails_verification_naming_the_host(
    tmp_path: Path,
) -> None:
    cert, key = self_signed_cert(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    app = web.Application()
    app.router.add_post("/echo", echo)
    runner = web.AppRunner(app, shutdown_timeout=0.2)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls).start()
    try:
        failure = await post(f"https://127.0.0.1:{runner.addresses[0][1]}/echo")
    finally:
        await runner.cleanup()
    assert isinstance(failure, Failure)
    assert (failure.kind, failure.error) == (
        "tls",
        "TLS certificate verify failed for 127.0.0.1: self-signed certificate",
    )


async def test_tls_to_a_plain_http_server_is_a_failed_handshake(base_url: str) -> None:
    failure = await post(base_url.replace("http://", "https://") + "/echo")
    assert isinstance(failure, Failure)
    assert (failure.kind, failure.error) == (
        "tls",
        "TLS handshake with 127.0.0.1 failed: wrong version number",
    )


@pytest.fixture
async def silent_url() -> AsyncIterator[str]:
    """A server that accepts connections and never says a word, nor hangs up."""
    done = asyncio.Event()

    async def say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await done.wait()
        writer.close()

    server = await asyncio.start_server(say_nothing, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    finally:
        done.set()
        server.close()
        await server.wait_closed()


async def test_a_server_that_never_answers_times_out(silent_url: str) -> None:
    failure = await post(silent_url, timeout=timedelta(milliseconds=200))
    assert isinstance(failure, Failure)
    assert (failure.kind, failure.error) == ("timeout", "timeout after 0.2s")


@pytest.fixture
async def resetting_url() -> AsyncIterator[str]:
    """A server that resets each connection as soon as it is accepted."""

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        # Linger 0: closing sends an RST rather than a FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    server = await asyncio.start_server(reset, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_reset_connection_is_named_so(resetting_url: str) -> None:
    failure = await post(resetting_url)
    assert isinstance(failure, Failure)
    assert (failure.kind, failure.error) == ("reset", "connection reset")


async def test_a_server_that_hangs_up_is_a_failure(base_url: str) -> None:
    failure = await post(f"{base_url}/hang-up")
    assert isinstance(failure, Failure)
    assert failure.kind == "disconnected"
    assert failure.error == "server disconnected without answering"
