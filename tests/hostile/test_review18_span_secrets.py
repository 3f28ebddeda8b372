"""An error that passes through a source span is recorded by the OpenTelemetry SDK as the
span's status description and an `exception` event, message and traceback in full, and
spans leave the process. The logs and the status page scrub the same error (a peer quoting
the request's Authorization header puts the access token in it); the span does not.

Real daemon (`run_daemon`) on the emulator, tracing on with the SDK's in-memory exporter; a
middleware answers the enrichment read of an updated record 403, quoting the header."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sftriggerd.config import parse_settings
from sftriggerd.daemon import run_daemon
from sftriggerd.delivery.dispatcher import build_dispatcher
from sftriggerd.tracing.otel import OtelTracing
from tests.acceptance.cli import free_port
from tests.hostile.stream_tamper import Handler
from tests.support.emulator import Middleware, RunningEmulator
from tests.support.receiver import Receiver
from tests.support.sfclient import OrgClient

RECORD_READ = re.compile(r"^/services/data/v[\d.]+/sobjects/Account/\w{15,18}$")


@dataclass
class QuotingPeer:
    """Refuses record reads, quoting the request's Authorization header."""

    quoted: str = ""

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "GET" or not RECORD_READ.match(request.path):
            return await handler(request)
        self.quoted = request.headers["Authorization"].removeprefix("Bearer ")
        message = f"no access for the session {request.headers['Authorization']}"
        return web.json_response(
            [{"errorCode": "INSUFFICIENT_ACCESS", "message": message}], status=403
        )


@pytest.fixture
def peer() -> QuotingPeer:
    return QuotingPeer()


@pytest.fixture
def emulator_middlewares(peer: QuotingPeer) -> tuple[Middleware, ...]:
    return (peer.middleware,)


def text_of(span: ReadableSpan) -> str:
    parts = [span.name, str(span.status.description or "")]
    parts += [str(value) for value in (span.attributes or {}).values()]
    for event in span.events:
        parts += [str(value) for value in (event.attributes or {}).values()]
    return "\n".join(parts)


async def test_an_error_quoting_the_access_token_never_leaves_in_a_span(
    tmp_path: Path,
    emulator: RunningEmulator,
    org: OrgClient,
    receiver: Receiver,
    peer: QuotingPeer,
) -> None:
    settings = parse_settings(
        f"""
salesforce:
  login_url: {emulator.url}
  auth: {{client_id: emulator-client, client_secret: emulator-secret,
          username: admin@emulator.local, password: emulator}}
  transport: cometd
store: {{url: "sqlite:///{tmp_path}/state.db"}}
triggers:
  - {{name: accounts, object: Account, mode: streaming, enrich: true, fields: [Name],
      start_from: earliest}}
endpoints:
  - {{name: receiver, url: "{receiver.url}", secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}}
server: {{listen: "127.0.0.1:{free_port()}", shutdown_grace: 1s}}
""",
        environ={},
    )
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    stopping = asyncio.Event()
    task = asyncio.create_task(
        run_daemon(settings, stopping, build_dispatcher, traces=OtelTracing(provider))
    )
    try:
        record = await org.create("Account", {"Name": "Before"})
        await org.call("PATCH", f"sobjects/Account/{record}", json={"Name": "After"})
        async with asyncio.timeout(30):
            while not any(s.status.description for s in exporter.get_finished_spans()):
                assert not task.done(), "the daemon stopped"
                await asyncio.sleep(0.05)
    finally:
        stopping.set()
        await asyncio.wait_for(task, 15)
    assert peer.quoted
    for span in exporter.get_finished_spans():
        assert peer.quoted not in text_of(span), f"span {span.name!r} carries the access token"
