"""The tracing line at start and in doctor names the OTLP endpoint without its user-info or
query. A gRPC endpoint is often written without a scheme (`host:4317`, which the exporter
takes); with user-info in it, `urlsplit` reads the user as the scheme and the password as
the path, and the line prints the password."""

from __future__ import annotations

from sftriggerd.tracing import setup

PASSWORD = "s3cret-collector-pass"


def test_an_endpoint_without_a_scheme_is_named_without_its_password() -> None:
    environ = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"otel:{PASSWORD}@collector.internal:4317",
    }
    shown = setup.plan(environ).describe()
    assert PASSWORD not in shown, shown
