"""Tracing's own faults never cost a delivery (issue 18, item 3): a propagator that raises, a
sampler that raises (the SDK failing to start spans), and exceptions passing through spans,
whose messages must not leave the process. The real daemon on the emulator and a real
receiver; the real SDK with its in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, StatusCode
from opentelemetry.util.types import Attributes

from sftriggerd.salesforce.answers import SalesforceApiError
from sftriggerd.tracing.otel import OtelTracing
from tests.integration.test_tracing import STREAMED, daemon, settings_for, traced, until
from tests.support.emulator import RunningEmulator
from tests.support.receiver import Receiver
from tests.support.sfclient import OrgClient

SECRET_IN_MESSAGE = "00Dxx0000001gPL!AQ4AQFhidden"


class RaisingPropagator(TextMapPropagator):
    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        raise RuntimeError("extract broke")

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        raise RuntimeError("inject broke")

    @property
    def fields(self) -> set[str]:
        return {"x-broken"}


class RaisingSampler(Sampler):
    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        raise RuntimeError("sampler broke")

    def get_description(self) -> str:
        return "raising"


@pytest.fixture
def broken_propagator() -> Iterator[None]:
    before = propagate.get_global_textmap()
    propagate.set_global_textmap(RaisingPropagator())
    try:
        yield
    finally:
        propagate.set_global_textmap(before)


async def test_a_propagator_that_raises_costs_the_header_not_the_delivery(
    tmp_path: Path,
    emulator: RunningEmulator,
    org: OrgClient,
    receiver: Receiver,
    broken_propagator: None,
) -> None:
    settings = settings_for(
        emulator, receiver.url, f"sqlite:///{tmp_path}/state.db", STREAMED, "cometd"
    )
    traces = traced()
    async with daemon(settings, traces.tracing) as task:
        for n in range(3):
            await org.create("Account", {"Name": f"Broken propagator {n}"})
        await until(lambda: len(receiver.arrivals) >= 3, task)
    assert len({a.event_id for a in receiver.arrivals}) == 3
    assert all("traceparent" not in a.headers for a in receiver.arrivals)
    assert len(traces.spans("deliver receiver")) == 3  # the spans themselves are kept


async def test_spans_that_cannot_start_cost_nothing_else(
    tmp_path: Path, emulator: RunningEmulator, org: OrgClient, receiver: Receiver
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=RaisingSampler())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = settings_for(
        emulator, receiver.url, f"sqlite:///{tmp_path}/state.db", STREAMED, "pubsub"
    )
    async with daemon(settings, OtelTracing(provider)) as task:
        record = await org.create("Account", {"Name": "No spans"})
        await until(lambda: any(record.encode() in a.body for a in receiver.arrivals), task)
        await org.create("Account", {"Name": "No spans either"})
        await until(lambda: len(receiver.arrivals) >= 2, task)
    assert not exporter.get_finished_spans()
    assert all("traceparent" not in a.headers for a in receiver.arrivals)


@pytest.mark.parametrize("kind", ["source", "ingest"])
def test_an_exception_through_a_span_marks_it_by_class_only(kind: str) -> None:
    traces = traced()
    spans = (
        traces.tracing.source_span("receive /data/X", {"sftriggerd.trigger": "t"})
        if kind == "source"
        else traces.tracing.ingest_span("t", 1)
    )
    with pytest.raises(SalesforceApiError), spans:
        raise SalesforceApiError(401, "INVALID_SESSION_ID", f"token {SECRET_IN_MESSAGE}")
    (span,) = traces.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "SalesforceApiError"
    assert not span.events, "no exception event: its message and stack would leave"
    assert SECRET_IN_MESSAGE not in repr(span.to_json())
