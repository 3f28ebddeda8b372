"""OTEL_* variables are often set for a whole cluster, and the tracing setup promises that a
request it cannot meet is reported and the daemon runs without traces. It catches only an
ImportError: a value the SDK refuses (a batch larger than the queue, a zero delay meant as
"at once", -1 meant as "no limit", a compression or a timeout the gRPC exporter cannot read)
raises out of `configure`, and `sftriggerd run` stops before delivering anything."""

from __future__ import annotations

import os

import pytest

from sftriggerd.tracing import setup

REFUSED_BY_THE_SDK = [
    {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "5000"},  # above the default queue of 2048
    {"OTEL_BSP_SCHEDULE_DELAY": "0"},
    {"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "-1"},
    {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"},
    {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TIMEOUT": "10s"},
]


@pytest.mark.parametrize("variables", REFUSED_BY_THE_SDK, ids=lambda v: ",".join(v))
async def test_a_value_the_sdk_refuses_leaves_the_daemon_running(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    # The SDK reads the process's environment itself, as it does under `sftriggerd run`.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    try:
        traces, plan = setup.configure(os.environ)
    except Exception as exc:
        pytest.fail(f"configure raised {type(exc).__name__}: {exc}")
    # Either traced, or untraced with the reason to report.
    await traces.close()
    assert traces.on or plan.problem
