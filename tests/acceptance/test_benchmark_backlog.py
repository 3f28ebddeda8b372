"""`benchmarks/backlog.py` runs end to end on a tiny backlog and reports every figure as a
number (no timings asserted: those are figures for people, in docs/performance.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.acceptance.benchmarks import run_benchmark

pytestmark = pytest.mark.slow

PENDING = 2000


def test_backlog_benchmark_reports_every_figure(tmp_path: Path) -> None:
    tiny = ["--pending", str(PENDING), "--idle-seconds", "1", "--drain-seconds", "5"]
    # TMPDIR: the cached store and the daemon's copy go under this test's directory.
    done = run_benchmark(
        "backlog.py", *tiny, "--tries", "2", "--json", env={"TMPDIR": str(tmp_path)}
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["pending"] == PENDING
    rows = report["rows"]
    phases = ("idle", "draining")
    for probe in ("GET /", "GET /api/deliveries", "GET /api/deliveries?status=pending"):
        for phase in phases:
            assert f"{probe}, {phase}, median (ms)" in rows
    for name in ("ready (s)", "RSS idle, mean (MB)", "RSS draining, max (MB)", "drain rate (/s)"):
        assert name in rows
    assert all(isinstance(value, int | float) and value > 0 for value in rows.values()), rows
    assert list(tmp_path.glob("sftriggerd-backlog/pending-*.db"))
