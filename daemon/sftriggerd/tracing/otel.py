"""Tracing on, with OpenTelemetry (the `otel` extra): imported only when configured on."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import Token
from urllib.parse import urlsplit

from opentelemetry import context as context_api
from opentelemetry import propagate
from opentelemetry.context import Context
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
from ..logs import get_logger
from ..store.records import Claim
from . import NO_ATTEMPT, Attempt, AttributeValue, Tracing

log = get_logger(__name__)
_W3C = TraceContextTextMapPropagator()
# How long closing waits for the exporter to send what is left, and for closing at all.
FLUSH_TIMEOUT_MS = 5000
CLOSE_TIMEOUT_S = 6.0


class OtelAttempt(Attempt):
    def __init__(self, span: Span) -> None:
        self._span = span

    def headers(self) -> Mapping[str, str]:
        # The configured propagators (OTEL_PROPAGATORS; by default W3C trace context and
        # baggage) write this span's context, so the receiver's span becomes its child.
        carrier: dict[str, str] = {}
        try:
            propagate.inject(carrier, context=set_span_in_context(self._span))
        except Exception as exc:  # a propagator's fault: the webhook goes without its context
            _failed("inject", exc)
            return {}
        return carrier

    def answered(self, result: Result, outcome: str) -> None:
        try:
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
        except Exception as exc:
            _failed("answered", exc)


class OtelTracing(Tracing):
    """Every call into OpenTelemetry is guarded: a fault of the SDK, an exporter or a
    propagator costs a span or a header, never a delivery, an ingest or a part of the daemon.
    Exceptions passing through a span mark it failed by their class only: their messages
    (a Salesforce or store error's text) may quote what must not leave the process."""

    on = True

    def __init__(self, provider: TracerProvider, version: str = "") -> None:
        self._provider = provider
        self._tracer = provider.get_tracer("sftriggerd", version)

    @contextmanager
    def source_span(self, name: str, attributes: Mapping[str, AttributeValue]) -> Iterator[None]:
        with self._span(name, SpanKind.CONSUMER, dict(attributes), current=True):
            yield

    @contextmanager
    def ingest_span(self, trigger: str, events: int) -> Iterator[None]:
        attributes: dict[str, AttributeValue] = {
            "sftriggerd.trigger": trigger,
            "sftriggerd.events": events,
        }
        with self._span("ingest", SpanKind.INTERNAL, attributes, current=True):
            yield

    def traceparent(self) -> str | None:
        carrier: dict[str, str] = {}
        try:
            _W3C.inject(carrier)  # the current span's context; nothing when there is none
        except Exception as exc:
            _failed("traceparent", exc)
            return None
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
        # Not made current: nothing under an attempt makes spans, and attaching a context
        # per delivery costs as much as the rest of the span.
        parent = set_span_in_context(stored_parent(claim.trace_context))
        with self._span(f"deliver {endpoint}", SpanKind.CLIENT, attributes, parent) as span:
            yield NO_ATTEMPT if span is INVALID_SPAN else OtelAttempt(span)

    @contextmanager
    def _span(
        self,
        name: str,
        kind: SpanKind,
        attributes: dict[str, AttributeValue],
        parent: Context | None = None,
        *,
        current: bool = False,
    ) -> Iterator[Span]:
        token: Token[Context] | None = None
        try:
            span = self._tracer.start_span(
                name,
                context=parent,
                kind=kind,
                attributes=attributes,
                record_exception=False,
                set_status_on_exception=False,
            )
            if current:
                token = context_api.attach(set_span_in_context(span))
        except Exception as exc:
            _failed("start", exc)
            yield INVALID_SPAN
            return
        try:
            yield span
        except BaseException as exc:
            failure = Status(StatusCode.ERROR, type(exc).__name__)
            _quietly(lambda: span.set_status(failure))
            raise
        finally:
            if token is not None:
                reset = token
                _quietly(lambda: context_api.detach(reset))
            _quietly(span.end)

    async def close(self) -> None:
        """Sends what is left, for at most `CLOSE_TIMEOUT_S`: on a thread of its own that
        does not hold the process, as an exporter may wait on a collector that never
        answers, and the default executor's threads are waited for at exit."""
        loop = asyncio.get_running_loop()
        finished = loop.create_future()

        def settle() -> None:
            if not finished.done():
                finished.set_result(None)

        def shut_down() -> None:
            try:
                self._provider.force_flush(FLUSH_TIMEOUT_MS)
                self._provider.shutdown()
            except Exception as exc:
                _failed("close", exc)
            finally:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(settle)

        threading.Thread(target=shut_down, name="tracing-close", daemon=True).start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(finished), CLOSE_TIMEOUT_S)


_reported: set[str] = set()


def _failed(where: str, exc: BaseException) -> None:
    """Logged once per place: a broken exporter would otherwise log for every span."""
    if where not in _reported:
        _reported.add(where)
        log.warning("tracing_fault", where=where, error=type(exc).__name__)


def _quietly(step: Callable[[], object]) -> None:
    try:
        step()
    except Exception as exc:
        _failed("span", exc)


def stored_parent(traceparent: str | None) -> Span:
    """The span a stored trace context names (remote: it ended, maybe in another process),
    or none when the event kept no context or one that cannot be read: the attempt then
    starts a trace of its own."""
    if not traceparent:
        return INVALID_SPAN
    try:
        extracted = _W3C.extract({"traceparent": traceparent})
    except Exception as exc:
        _failed("extract", exc)
        return INVALID_SPAN
    for value in extracted.values():
        if isinstance(value, Span) and value.get_span_context().is_valid:
            return value
    return INVALID_SPAN


@functools.lru_cache(maxsize=256)
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
