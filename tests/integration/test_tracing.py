"""Tracing a change's way (issue 18, item 3): the real daemon (`run_daemon`) on the emulator,
a real receiver, real SQLite and PostgreSQL stores, spans caught by the SDK's in-memory
exporter.

Each change is one trace: the Salesforce message or query page, its ingest, and every
delivery attempt, the attempts children of the ingest span whose context the event keeps in
the store, so a restart (or another replica) between ingest and delivery keeps the trace.
The receiver gets the attempt's context as a W3C `traceparent` header.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from sftriggerd.config import Settings, parse_settings
from sftriggerd.daemon import run_daemon
from sftriggerd.delivery.dispatcher import build_dispatcher
from sftriggerd.tracing import Tracing
from sftriggerd.tracing.otel import OtelTracing
from tests.acceptance.cli import free_port
from tests.support.emulator import RunningEmulator
from tests.support.receiver import Arrival, Receiver
from tests.support.sfclient import OrgClient

# In the endpoint's URL, where webhook URLs often keep their credentials: never in a span.
URL_SECRET = "s3cret-in-the-query"
STREAMED = (
    "{name: accounts, object: Account, mode: streaming, fields: [Name], start_from: earliest}"
)
POLLED = (
    "{name: accounts, object: Account, mode: polling, fields: [Name], poll_interval: 300ms,"
    " poll_delay: 0s, start_from: earliest}"
)


@dataclass
class Traced:
    exporter: InMemorySpanExporter
    tracing: OtelTracing

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        found = self.exporter.get_finished_spans()
        return [s for s in found if name is None or s.name == name]


def traced() -> Traced:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Traced(exporter, OtelTracing(provider))


def settings_for(
    emulator: RunningEmulator, hook_url: str, store_url: str, trigger: str, transport: str
) -> Settings:
    return parse_settings(
        f"""
salesforce:
  login_url: {emulator.url}
  auth: {{client_id: emulator-client, client_secret: emulator-secret,
          username: admin@emulator.local, password: emulator}}
  transport: {transport}
  pubsub_url: http://{emulator.pubsub_address}
store: {{url: "{store_url}"}}
triggers:
  - {trigger}
endpoints:
  - {{name: receiver, url: "{hook_url}?token={URL_SECRET}",
      secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, timeout: 5s,
      retry: {{schedule: [100ms], max_age: 10m}}}}
server: {{listen: "127.0.0.1:{free_port()}", shutdown_grace: 1s}}
""",
        environ={},
    )


@contextlib.asynccontextmanager
async def daemon(
    settings: Settings, traces: Tracing | None, *, deliver: bool = True
) -> AsyncIterator[asyncio.Task[None]]:
    stopping = asyncio.Event()
    task = asyncio.create_task(
        run_daemon(
            settings,
            stopping,
            dispatcher_factory=build_dispatcher if deliver else None,
            traces=traces,
        )
    )
    try:
        yield task
    finally:
        stopping.set()
        await asyncio.wait_for(task, 15)


async def until(check: Callable[[], bool], task: asyncio.Task[None], timeout_s: float = 20) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():
            assert not task.done(), "the daemon stopped"
            await asyncio.sleep(0.05)


def parent_of(span: ReadableSpan, among: list[ReadableSpan]) -> ReadableSpan:
    assert span.parent is not None, f"{span.name} has no parent"
    (found,) = [s for s in among if s.context.span_id == span.parent.span_id]
    return found


def traceparent_of(span: ReadableSpan) -> str:
    context = span.context
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def no_secret_in(spans: list[ReadableSpan]) -> None:
    for span in spans:
        for value in (span.attributes or {}).values():
            assert URL_SECRET not in str(value), f"{span.name} shows the URL's secret"
        assert URL_SECRET not in str(span.status.description or "")


@pytest.mark.parametrize(
    ("mode", "source_span"),
    [
        ("cometd", "receive /data/AccountChangeEvent"),
        ("pubsub", "receive /data/AccountChangeEvent"),
        ("polling", "poll Account"),
    ],
)
async def test_one_trace_from_the_salesforce_message_to_the_receiver(
    tmp_path: Path,
    emulator: RunningEmulator,
    org: OrgClient,
    receiver: Receiver,
    mode: str,
    source_span: str,
) -> None:
    trigger = POLLED if mode == "polling" else STREAMED
    transport = "cometd" if mode == "polling" else mode
    settings = settings_for(
        emulator, receiver.url, f"sqlite:///{tmp_path}/state.db", trigger, transport
    )
    traces = traced()
    async with daemon(settings, traces.tracing) as task:
        record = await org.create("Account", {"Name": "Traced"})
        await until(lambda: any(record.encode() in a.body for a in receiver.arrivals), task)
        await until(lambda: bool(traces.spans("deliver receiver")), task)
    spans = traces.spans()
    (attempt,) = traces.spans("deliver receiver")
    ingest = parent_of(attempt, spans)
    source = parent_of(ingest, spans)
    assert (ingest.name, source.name) == ("ingest", source_span)
    assert source.parent is None, "the Salesforce message starts the trace"
    assert {attempt.context.trace_id, ingest.context.trace_id} == {source.context.trace_id}
    (arrival,) = receiver.arrivals
    assert arrival.headers["traceparent"] == traceparent_of(attempt)
    attributes = dict(attempt.attributes or {})
    assert attributes["sftriggerd.outcome"] == "delivered"
    assert attributes["http.response.status_code"] == 204
    assert attributes["sftriggerd.attempt"] == 1
    assert attributes["sftriggerd.event_id"] == arrival.event_id
    assert attributes["server.address"] == "127.0.0.1"
    assert (source.attributes or {})["sftriggerd.trigger"] == "accounts"
    no_secret_in(spans)


async def test_every_attempt_is_a_span_of_the_same_trace(
    tmp_path: Path, emulator: RunningEmulator, org: OrgClient, receiver: Receiver
) -> None:
    async def refuse_once(arrival: Arrival) -> web.StreamResponse:
        return web.Response(status=503 if arrival.attempt == 1 else 204)

    receiver.respond = refuse_once
    settings = settings_for(
        emulator, receiver.url, f"sqlite:///{tmp_path}/state.db", STREAMED, "cometd"
    )
    traces = traced()
    async with daemon(settings, traces.tracing) as task:
        await org.create("Account", {"Name": "Retried"})
        await until(lambda: len(traces.spans("deliver receiver")) == 2, task)
    first, second = sorted(traces.spans("deliver receiver"), key=lambda s: s.start_time or 0)
    spans = traces.spans()
    assert parent_of(first, spans) is parent_of(second, spans)
    assert [dict(s.attributes or {})["sftriggerd.attempt"] for s in (first, second)] == [1, 2]
    assert dict(first.attributes or {})["http.response.status_code"] == 503
    assert dict(first.attributes or {})["sftriggerd.outcome"] == "retry"
    assert first.status.status_code is StatusCode.ERROR
    assert second.status.status_code is not StatusCode.ERROR
    assert [a.headers["traceparent"] for a in receiver.arrivals] == [
        traceparent_of(first),
        traceparent_of(second),
    ]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    url: str = request.getfixturevalue("empty_postgres_url")
    return url


async def test_the_trace_crosses_the_store_to_a_later_process(
    emulator: RunningEmulator, org: OrgClient, receiver: Receiver, store_url: str
) -> None:
    settings = settings_for(emulator, receiver.url, store_url, STREAMED, "cometd")
    before = traced()
    async with daemon(settings, before.tracing, deliver=False) as task:
        await org.create("Account", {"Name": "Stored"})
        await until(lambda: bool(before.spans("ingest")), task)
    (stored,) = before.spans("ingest")
    assert not receiver.arrivals

    after = traced()  # another process: nothing in memory of the first
    async with daemon(settings, after.tracing) as task:
        await until(lambda: bool(after.spans("deliver receiver")), task)
    (attempt,) = after.spans("deliver receiver")
    assert attempt.context.trace_id == stored.context.trace_id
    assert attempt.parent is not None and attempt.parent.span_id == stored.context.span_id
    assert attempt.parent.is_remote
    assert receiver.arrivals[0].headers["traceparent"] == traceparent_of(attempt)


async def test_an_event_stored_untraced_starts_a_trace_at_its_attempt(
    tmp_path: Path, emulator: RunningEmulator, org: OrgClient, receiver: Receiver
) -> None:
    settings = settings_for(
        emulator, receiver.url, f"sqlite:///{tmp_path}/state.db", STREAMED, "cometd"
    )
    async with daemon(settings, None, deliver=False) as task:
        await org.create("Account", {"Name": "Untraced"})
        await asyncio.sleep(1.5)  # stored: the next process delivers it
    assert not task.exception()
    traces = traced()
    async with daemon(settings, traces.tracing) as task:
        await until(lambda: bool(traces.spans("deliver receiver")), task)
    (attempt,) = traces.spans("deliver receiver")
    assert attempt.parent is None
    assert receiver.arrivals[0].headers["traceparent"] == traceparent_of(attempt)


async def test_tracing_off_sends_no_trace_header(
    tmp_path: Path, emulator: RunningEmulator, org: OrgClient, receiver: Receiver
) -> None:
    settings = settings_for(
        emulator, receiver.url, f"sqlite:///{tmp_path}/state.db", STREAMED, "cometd"
    )
    async with daemon(settings, None) as task:
        await org.create("Account", {"Name": "Plain"})
        await until(lambda: bool(receiver.arrivals), task)
    headers: dict[str, Any] = {k.lower(): v for k, v in receiver.arrivals[0].headers.items()}
    assert "traceparent" not in headers
    assert "webhook-signature" in headers
