"""Whether the daemon traces, and where to, from the OTEL_* variables; and the stored trace
context read back, whatever it holds."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION

from sftriggerd.doctor.checks import ok
from sftriggerd.doctor.tracing_check import check_tracing
from sftriggerd.tracing import Attempt, Tracing
from sftriggerd.tracing.exporting import resource
from sftriggerd.tracing.otel import OtelTracing, stored_parent
from sftriggerd.tracing.setup import INSTALL_HINT, configure, plan

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"OTEL_SERVICE_NAME": "triggers"},  # names, but asks for nothing
        {"OTEL_TRACES_EXPORTER": "none"},
        {"OTEL_TRACES_EXPORTER": "none", **ENDPOINT},
        {"OTEL_SDK_DISABLED": "true", **ENDPOINT},
        {"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp"},
    ],
)
def test_off_unless_asked_for(environ: dict[str, str]) -> None:
    found = plan(environ)
    assert not found.wanted and found.problem is None
    traces, _ = configure(environ)
    assert type(traces) is Tracing and not traces.on


@pytest.mark.parametrize(
    ("environ", "exporters", "protocol"),
    [
        (ENDPOINT, ("otlp",), "http/protobuf"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ("otlp",), None),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, ("otlp",), "http/protobuf"),
        ({"OTEL_TRACES_EXPORTER": " Console , otlp,console"}, ("console", "otlp"), None),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", **ENDPOINT}, ("otlp",), "grpc"),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL": "x"},
            (),
            None,
        ),
        ({"OTEL_SDK_DISABLED": "false", **ENDPOINT}, ("otlp",), None),
    ],
)
def test_on_when_an_exporter_or_endpoint_is_named(
    environ: dict[str, str], exporters: tuple[str, ...], protocol: str | None
) -> None:
    found = plan(environ)
    if not exporters:  # the traces' own protocol wins; without an exporter, off
        assert not found.wanted and found.protocol == "http/protobuf"
        return
    assert found.wanted and found.problem is None
    assert found.exporters == exporters
    if protocol is not None:
        assert found.protocol == protocol
    traces, _ = configure(environ, "9.9")
    assert isinstance(traces, OtelTracing) and traces.on


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "zipkin"),
        ({"OTEL_TRACES_EXPORTER": "otlp,jaeger"}, "jaeger"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", **ENDPOINT}, "http/json"),
    ],
)
def test_what_cannot_be_done_is_said_and_the_daemon_runs_untraced(
    environ: dict[str, str], named: str
) -> None:
    traces, found = configure(environ)
    assert not traces.on
    assert found.problem is not None and named in found.problem


def test_without_the_extra_the_problem_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What an install without the otel extra meets: the SDK's modules cannot be imported.
    monkeypatch.setitem(sys.modules, "sftriggerd.tracing.exporting", None)
    traces, found = configure(ENDPOINT)
    assert not traces.on
    assert found.problem is not None and INSTALL_HINT in found.problem


def test_the_endpoint_is_shown_without_credentials() -> None:
    found = plan({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://user:pw@collector:4318/x?key=k"})
    assert found.endpoint == "https://collector:4318/x"
    assert "pw" not in found.describe() and "key=k" not in found.describe()
    assert plan({}).describe().startswith("off")


def test_the_service_is_named_sftriggerd_unless_the_variables_name_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    named = resource("1.2.3").attributes
    assert (named[SERVICE_NAME], named[SERVICE_VERSION]) == ("sftriggerd", "1.2.3")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "triggers-eu")
    assert resource("1.2.3").attributes[SERVICE_NAME] == "triggers-eu"
    monkeypatch.delenv("OTEL_SERVICE_NAME")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes,team=crm")
    assert resource("").attributes[SERVICE_NAME] == "from-attributes"


VARIABLES = [
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
]


@given(st.dictionaries(st.sampled_from(VARIABLES), st.text(max_size=40)))
def test_any_variables_give_a_plan_never_an_exception(environ: dict[str, str]) -> None:
    found = plan(environ)
    assert found.wanted or found.problem is None
    assert isinstance(found.describe(), str)
    if found.wanted and found.problem is None:
        assert set(found.exporters) <= {"otlp", "console"}


VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_stored_context_names_its_span() -> None:
    context = stored_parent(VALID).get_span_context()
    assert context.is_valid and context.is_remote
    assert (context.trace_id, context.span_id) == (
        0x4BF92F3577B34DA6A3CE929D0E0E4736,
        0x00F067AA0BA902B7,
    )


@pytest.mark.parametrize(
    "stored",
    [None, "", "garbage", "00-" + "0" * 32 + "-00f067aa0ba902b7-01", VALID.replace("-01", "-zz")],
)
def test_an_unreadable_stored_context_starts_a_new_trace(stored: str | None) -> None:
    assert not stored_parent(stored).get_span_context().is_valid


@given(st.text(max_size=120))
def test_any_stored_context_reads_without_an_exception(stored: str) -> None:
    stored_parent(stored)  # valid or not; what matters is that it never raises


async def test_doctor_says_whether_tracing_is_on_and_where_to() -> None:
    assert await check_tracing({}) == ok("tracing", plan({}).describe())
    on = await check_tracing(ENDPOINT)
    assert on.status == "ok"
    assert on.detail == "on: otlp (http/protobuf) to http://collector:4318"


@pytest.mark.parametrize(
    "environ",
    [{"OTEL_TRACES_EXPORTER": "zipkin"}, {"OTEL_EXPORTER_OTLP_PROTOCOL": "x", **ENDPOINT}],
)
async def test_doctor_warns_of_variables_the_daemon_cannot_follow(
    environ: dict[str, str],
) -> None:
    found = await check_tracing(environ)
    assert found.status == "warning"  # the daemon runs, untraced: not a failure
    assert found.detail.startswith("asked for but will not start:") and found.fix


async def test_doctor_names_the_missing_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    # What an install without the gRPC exporter meets: its module cannot be imported.
    grpc_exporter = "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"
    monkeypatch.setitem(sys.modules, grpc_exporter, None)
    found = await check_tracing({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", **ENDPOINT})
    assert found.status == "warning" and INSTALL_HINT in found.detail
    assert (await check_tracing(ENDPOINT)).status == "ok"  # the HTTP exporter is there


async def test_doctor_shows_what_the_sdk_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "0")  # the SDK reads its own variables
    found = await check_tracing(ENDPOINT)
    assert found.status == "warning" and "schedule_delay" in found.detail


def test_the_trace_header_replaces_a_configured_one_in_any_case() -> None:
    class Traced(Attempt):
        def headers(self) -> dict[str, str]:
            return {"traceparent": VALID}

    headers = {"webhook-id": "evt_1", "Traceparent": "configured", "X-Team": "crm"}
    Traced().add_headers(headers)
    assert headers == {"webhook-id": "evt_1", "X-Team": "crm", "traceparent": VALID}
    untouched = {"Traceparent": "configured"}
    Attempt().add_headers(untouched)  # tracing off: the endpoint's own header stays
    assert untouched == {"Traceparent": "configured"}
