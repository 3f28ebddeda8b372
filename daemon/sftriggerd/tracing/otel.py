"""Tracing on, with OpenTelemetry (the `otel` extra): imported only when configured on."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urlsplit

from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import (
    INVALID_SPAN,
    Span,
    SpanKind,
    Status,
    StatusCode,
    set_span_in_context,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ..delivery.answers import Answer, Result
from ..store.records import Claim
from . import Attempt, AttributeValue, Tracing

_W3C = TraceContextTextMapPropagator()
# How long closing waits for the exporter to send what is left.
FLUSH_TIMEOUT_MS = 5000


class OtelAttempt(Attempt):
    def __init__(self, span: Span) -> None:
        self._span = span

    def headers(self) -> Mapping[str, str]:
        # The configured propagators (OTEL_PROPAGATORS; by default W3C trace context and
        # baggage) write this span's context, so the receiver's span becomes its child.
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=set_span_in_context(self._span))
        return carrier

    def answered(self, result: Result, outcome: str) -> None:
        self._span.set_attribute("sftriggerd.outcome", outcome)
        if isinstance(result, Answer):
            self._span.set_attribute("http.response.status_code", result.status)
            if not result.ok:
                self._span.set_attribute("error.type", str(result.status))
                self._span.set_status(Status(StatusCode.ERROR, f"HTTP {result.status}"))
        else:
            # The failure's text names its cause and holds no secret (delivery/sender.py).
            self._span.set_attribute("error.type", result.kind)
            self._span.set_status(Status(StatusCode.ERROR, result.error))


class OtelTracing(Tracing):
    on = True

    def __init__(self, provider: TracerProvider, version: str = "") -> None:
        self._provider = provider
        self._tracer = provider.get_tracer("sftriggerd", version)

    @contextmanager
    def source_span(self, name: str, attributes: Mapping[str, AttributeValue]) -> Iterator[None]:
        with self._tracer.start_as_current_span(
            name, kind=SpanKind.CONSUMER, attributes=dict(attributes)
        ):
            yield

    @contextmanager
    def ingest_span(self, trigger: str, events: int) -> Iterator[None]:
        attributes: dict[str, AttributeValue] = {
            "sftriggerd.trigger": trigger,
            "sftriggerd.events": events,
        }
        with self._tracer.start_as_current_span("ingest", attributes=attributes):
            yield

    def traceparent(self) -> str | None:
        carrier: dict[str, str] = {}
        _W3C.inject(carrier)  # the current span's context; nothing when there is none
        return carrier.get("traceparent")

    @contextmanager
    def attempt_span(self, claim: Claim, endpoint: str, url: str) -> Iterator[Attempt]:
        attributes: dict[str, AttributeValue] = {
            "sftriggerd.endpoint": endpoint,
            "sftriggerd.trigger": claim.trigger,
            "sftriggerd.event_id": claim.event_id,
            "sftriggerd.delivery_id": claim.delivery_id,
            "sftriggerd.attempt": claim.attempts + 1,
            "http.request.method": "POST",
            **_server(url),
        }
        with self._tracer.start_as_current_span(
            f"deliver {endpoint}",
            context=set_span_in_context(stored_parent(claim.trace_context)),
            kind=SpanKind.CLIENT,
            attributes=attributes,
        ) as span:
            yield OtelAttempt(span)

    async def close(self) -> None:
        # The exporter sends on its own thread and may wait on a collector that is down.
        await asyncio.to_thread(self._provider.force_flush, FLUSH_TIMEOUT_MS)
        await asyncio.to_thread(self._provider.shutdown)


def stored_parent(traceparent: str | None) -> Span:
    """The span a stored trace context names (remote: it ended, maybe in another process),
    or none when the event kept no context or one that cannot be read: the attempt then
    starts a trace of its own."""
    if not traceparent:
        return INVALID_SPAN
    context = _W3C.extract({"traceparent": traceparent})
    for value in context.values():
        if isinstance(value, Span) and value.get_span_context().is_valid:
            return value
    return INVALID_SPAN


def _server(url: str) -> dict[str, AttributeValue]:
    """Where the attempt went, without the path or query: a webhook URL often carries its
    credentials there (Slack's, Zapier's), and spans leave the process."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return {}
    found: dict[str, AttributeValue] = {"url.scheme": parts.scheme}
    if parts.hostname:
        found["server.address"] = parts.hostname
    if port is not None:
        found["server.port"] = port
    return found
