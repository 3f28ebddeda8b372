"""The tracer provider the variables ask for (imports the SDK: the `otel` extra)."""

from __future__ import annotations

import sys

from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

from .otel import OtelTracing


def build_tracing(exporters: tuple[str, ...], protocol: str, version: str) -> OtelTracing:
    """Raises ImportError when the exporter for `protocol` is not installed."""
    # The sampler from OTEL_TRACES_SAMPLER. Not shut down at exit: the daemon closes it itself
    # within a bound (`OtelTracing.close`), and the SDK's exit hook would wait on a collector
    # that never answers for as long as the exporter's timeout allows.
    provider = TracerProvider(resource=resource(version), shutdown_on_exit=False)
    for name in exporters:
        if name == "console":
            # Standard error: standard output holds the JSON logs.
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
        else:
            # Batched on the processor's own thread: a slow collector never holds a delivery.
            provider.add_span_processor(BatchSpanProcessor(otlp_exporter(protocol)))
    return OtelTracing(provider, version)


def otlp_exporter(protocol: str) -> SpanExporter:
    # Endpoint, headers, timeout, compression and TLS files: from OTEL_EXPORTER_OTLP_*.
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    return HttpExporter()


def resource(version: str) -> Resource:
    """OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, named `sftriggerd` when they give no
    service name."""
    found = Resource.create({SERVICE_VERSION: version} if version else {})
    if str(found.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        found = found.merge(Resource({SERVICE_NAME: "sftriggerd"}))
    return found
