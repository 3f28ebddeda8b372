"""`benchmarks/tracing.py` runs end to end: both legs deliver every event, and with tracing on
every attempt and every ingest is a span (no timings asserted: those are figures for people,
in docs/performance.md)."""

from __future__ import annotations

import re

import pytest

from tests.acceptance.benchmarks import run_benchmark

pytestmark = pytest.mark.slow


def test_tracing_benchmark_runs_both_legs_and_exports_the_spans() -> None:
    done = run_benchmark(
        "tracing.py", "--events", "60", "--rounds", "1", "--batch", "20", "--concurrency", "4"
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"tracing off: 60 in ", done.stdout), done.stdout
    assert re.search(r"tracing on : 60 in ", done.stdout), done.stdout
    # 60 attempt spans and one ingest span per batch of 20.
    assert "(tracing on: 63 spans exported)" in done.stdout, done.stdout
    assert re.search(r"tracing on / off: rate [0-9.]+, CPU per delivery [0-9.]+", done.stdout)
