"""Whether to trace, and where to, from the standard OpenTelemetry variables.

Tracing is off unless asked for: by `OTEL_TRACES_EXPORTER` (otlp, console, or both), or by
an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), and
`OTEL_SDK_DISABLED` is not true. The rest (service name, resource attributes, sampler, batch
sizes, endpoint, headers, timeout, TLS files, propagators) the SDK reads itself.

A request that cannot be met (an exporter or protocol this build does not have, or the
extra not installed) is reported and the daemon runs without traces: OTEL_* variables are
often set for a whole cluster, and a change must not stop being delivered for its trace.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import Tracing

EXPORTERS = ("otlp", "console")
PROTOCOLS = ("http/protobuf", "grpc")
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
INSTALL_HINT = "install the otel extra: pip install 'sftriggerd[otel]'"


@dataclass(frozen=True)
class TracingPlan:
    """What the variables ask for; `problem` says why it cannot be done."""

    wanted: bool
    exporters: tuple[str, ...] = ()
    protocol: str = "http/protobuf"
    endpoint: str | None = None
    problem: str | None = None

    def describe(self) -> str:
        if not self.wanted:
            return "off (no OTEL_TRACES_EXPORTER or OTLP endpoint set)"
        ways = []
        for exporter in self.exporters:
            if exporter == "otlp":
                ways.append(f"otlp ({self.protocol}) to {self.endpoint or 'the default endpoint'}")
            else:
                ways.append("console (standard error)")
        return "on: " + ", ".join(ways)


def plan(environ: Mapping[str, str]) -> TracingPlan:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return TracingPlan(wanted=False)
    named = environ.get("OTEL_TRACES_EXPORTER", "")
    exporters = tuple(dict.fromkeys(n.strip().lower() for n in named.split(",") if n.strip()))
    endpoint = next((environ[name] for name in _ENDPOINTS if environ.get(name)), None)
    if not exporters:
        exporters = ("otlp",) if endpoint else ()
    exporters = tuple(n for n in exporters if n != "none")
    if not exporters:
        return TracingPlan(wanted=False)
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    found = TracingPlan(True, exporters, protocol, _shown(endpoint))
    unknown = [n for n in exporters if n not in EXPORTERS]
    if unknown:
        return _refused(
            found,
            f"OTEL_TRACES_EXPORTER names {', '.join(unknown)}; sftriggerd"
            f" exports traces by {' or '.join(EXPORTERS)}",
        )
    if "otlp" in exporters and protocol not in PROTOCOLS:
        return _refused(
            found, f"the OTLP protocol {protocol!r} is not supported; use {' or '.join(PROTOCOLS)}"
        )
    return found


def configure(environ: Mapping[str, str], version: str = "") -> tuple[Tracing, TracingPlan]:
    """The daemon's tracing as the variables ask, and the plan (with its problem) to report.
    Never raises: whatever the SDK refuses (a value it cannot read, a propagator named in
    OTEL_PROPAGATORS that is not installed) is the plan's problem, and tracing stays off."""
    wanted = plan(environ)
    if not wanted.wanted or wanted.problem:
        return Tracing(), wanted
    try:
        from .exporting import build_tracing

        return build_tracing(wanted.exporters, wanted.protocol, version), wanted
    except ImportError as exc:
        missing = exc.name or "an OpenTelemetry module"
        return Tracing(), _refused(wanted, f"{missing} cannot be imported; {INSTALL_HINT}")
    except Exception as exc:
        refusal = " ".join(str(exc).split())[:300]
        return Tracing(), _refused(
            wanted, f"OpenTelemetry refused the OTEL_* variables: {type(exc).__name__}: {refusal}"
        )


def _refused(found: TracingPlan, problem: str) -> TracingPlan:
    return TracingPlan(found.wanted, found.exporters, found.protocol, found.endpoint, problem)


def _shown(endpoint: str | None) -> str | None:
    """The endpoint without user-info or query, which may hold credentials. Written without
    a scheme (`host:4317`, as gRPC endpoints often are), it is read as `//host:4317`: else
    the user would be taken for the scheme and the password for the path."""
    if endpoint is None:
        return None
    text = endpoint.strip()
    try:
        parts = urlsplit(text if "://" in text else f"//{text}")
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "an endpoint that is not a URL"
    path = parts.path if parts.scheme else ""
    return f"{parts.scheme}://{host}{port}{path}" if parts.scheme else host + port
