"""Tracing as an operator turns it on (issue 18, item 3): `sftriggerd run` as a subprocess,
configured only by the standard OTEL_* variables, exporting over the real OTLP wire (HTTP
with protobuf, and gRPC) to a local collector that decodes what arrives; a collector that is
down; and an install without the otel extra. Deliveries never depend on any of it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import grpc
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from tests.acceptance.cli import free_port
from tests.acceptance.harness import (
    Org,
    Process,
    Receiver,
    daemon_config,
    start,
    verifying_receiver,
    wait_http,
)
from tests.support.emulator import RunningEmulator

TRIGGER = "  - {name: accounts, object: Account, mode: streaming, start_from: earliest}"
# Sent to the collector on every export; must never be written to the daemon's log.
COLLECTOR_TOKEN = "collector-token-0b3c9e"


@dataclass
class Collected:
    service: str
    version: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str


@dataclass
class Collector:
    spans: list[Collected] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)

    def take(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            resource = _values(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        Collected(
                            service=resource.get("service.name", ""),
                            version=resource.get("service.version", ""),
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                        )
                    )


def _values(attributes: list[KeyValue]) -> dict[str, str]:
    return {item.key: item.value.string_value for item in attributes}


@contextlib.asynccontextmanager
async def http_collector(port: int) -> AsyncIterator[Collector]:
    collector = Collector()

    async def export(request: web.Request) -> web.Response:
        message = trace_service_pb2.ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        collector.authorizations.append(request.headers.get("authorization", ""))
        collector.take(message)
        answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", export)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield collector
    finally:
        await runner.cleanup()


class GrpcTraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    async def Export(  # the generated servicer names it so
        self,
        request: trace_service_pb2.ExportTraceServiceRequest,
        context: grpc.aio.ServicerContext[
            trace_service_pb2.ExportTraceServiceRequest,
            trace_service_pb2.ExportTraceServiceResponse,
        ],
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        metadata = dict(context.invocation_metadata() or ())
        self.collector.authorizations.append(str(metadata.get("authorization", "")))
        self.collector.take(request)
        return trace_service_pb2.ExportTraceServiceResponse()


@contextlib.asynccontextmanager
async def grpc_collector(port: int) -> AsyncIterator[Collector]:
    collector = Collector()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(GrpcTraceService(collector), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    try:
        yield collector
    finally:
        await server.stop(0)


@contextlib.asynccontextmanager
async def running_daemon(
    tmp_path: Path, emulator: RunningEmulator, hooks: Receiver
) -> AsyncIterator[tuple[Process, Org]]:
    emulator_port, admin = urlsplit(emulator.url).port, free_port()
    assert emulator_port is not None
    config = daemon_config(tmp_path, emulator_port, hooks.port, admin, TRIGGER)
    daemon = await start(["run", "--config", str(config)], tmp_path / "daemon.log")
    try:
        async with aiohttp.ClientSession() as http:
            await wait_http(f"http://127.0.0.1:{admin}/healthz")
            org = Org(emulator.url, http)
            await org.login()
            yield daemon, org
    finally:
        await daemon.stop()


async def until_spans(collector: Collector, name: str, timeout_s: float = 30) -> Collected:
    async with asyncio.timeout(timeout_s):
        while not any(span.name == name for span in collector.spans):
            await asyncio.sleep(0.1)
    return next(span for span in collector.spans if span.name == name)


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
async def test_spans_reach_an_otlp_collector_and_the_receiver_joins_the_trace(
    tmp_path: Path, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    port = free_port()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"authorization=Bearer {COLLECTOR_TOKEN}")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
    serve = grpc_collector if protocol == "grpc" else http_collector
    async with serve(port) as collector, verifying_receiver() as hooks:
        async with running_daemon(tmp_path, emulator, hooks) as (daemon, org):
            await org.call("POST", "sobjects/Account", {"Name": "Traced"})
            await hooks.wait_for(1)
            attempt = await until_spans(collector, "deliver receiver")
        assert daemon.process.returncode == 0
    ingest = next(s for s in collector.spans if s.span_id == attempt.parent_id)
    source = next(s for s in collector.spans if s.span_id == ingest.parent_id)
    assert (ingest.name, source.name) == ("ingest", "receive /data/AccountChangeEvent")
    assert {s.trace_id for s in (attempt, ingest, source)} == {attempt.trace_id}
    assert {s.service for s in collector.spans} == {"sftriggerd"}
    assert all(s.version for s in collector.spans)
    assert set(collector.authorizations) == {f"Bearer {COLLECTOR_TOKEN}"}
    # The receiver verified the signature with the trace header present.
    assert hooks.bad_signatures == 0
    log = (tmp_path / "daemon.log").read_text()
    assert "tracing_started" in log
    assert COLLECTOR_TOKEN not in log


async def test_a_collector_that_is_down_costs_no_delivery_and_no_clean_stop(
    tmp_path: Path, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    async with verifying_receiver() as hooks:
        async with running_daemon(tmp_path, emulator, hooks) as (daemon, org):
            for n in range(5):
                await org.call("POST", "sobjects/Account", {"Name": f"Untraced {n}"})
            await hooks.wait_for(5)
            await asyncio.sleep(1)  # exports fail meanwhile
            started = time.monotonic()
            assert await daemon.stop() == 0
            stop_s = time.monotonic() - started
    assert hooks.unique() == 5
    # Closing waits at most the flush timeout (5 s) and the exporter's own give-up.
    assert stop_s < 30, f"stopping took {stop_s:.1f}s"


async def test_without_the_extra_the_daemon_says_so_and_delivers_untraced(
    tmp_path: Path, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An install without the otel extra: a site hook that makes OpenTelemetry unimportable
    # in the daemon's interpreter (what pip's environment would be without it).
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys\n"
        "class NoOpenTelemetry:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'opentelemetry' or name.startswith('opentelemetry.'):\n"
        "            raise ImportError(f'No module named {name!r}')\n"
        "        return None\n"
        "sys.meta_path.insert(0, NoOpenTelemetry())\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    async with verifying_receiver() as hooks:
        async with running_daemon(tmp_path, emulator, hooks) as (daemon, org):
            await org.call("POST", "sobjects/Account", {"Name": "No extra"})
            await hooks.wait_for(1)
        assert daemon.process.returncode == 0
    log = (tmp_path / "daemon.log").read_text()
    assert "tracing_not_started" in log and "sftriggerd[otel]" in log


@contextlib.asynccontextmanager
async def silent_collector(port: int) -> AsyncIterator[None]:
    """Takes connections and reads them, never answering: an exporter waits its timeout."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass

    server = await asyncio.start_server(hold, "127.0.0.1", port)
    try:
        yield
    finally:
        for writer in held:
            writer.close()
        server.close()


async def test_a_collector_that_never_answers_does_not_hold_the_stop(
    tmp_path: Path, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "120")  # the exporter would wait 2 min
    async with silent_collector(port), verifying_receiver() as hooks:
        async with running_daemon(tmp_path, emulator, hooks) as (daemon, org):
            await org.call("POST", "sobjects/Account", {"Name": "Held export"})
            await hooks.wait_for(1)
            started = time.monotonic()
            assert await daemon.stop(timeout_s=60) == 0
            stop_s = time.monotonic() - started
    # The daemon's grace (5 s) and closing tracing (at most 6 s), not the exporter's 2 min.
    assert stop_s < 20, f"stopping took {stop_s:.1f}s"
