"""`benchmarks/backlog.py` runs end to end on a tiny backlog and reports every figure as a
number (no timings asserted: those are figures for people, in docs/performance.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sftriggerd
import sftriggerd_emulator

pytestmark = pytest.mark.slow

PENDING = 2000


def test_backlog_benchmark_reports_every_figure(tmp_path: Path) -> None:
    root = Path(__file__).parents[2]
    packages = [Path(p.__file__).parents[1] for p in (sftriggerd, sftriggerd_emulator)]
    # TMPDIR: the cached store and the daemon's copy go under this test's directory.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, packages)), "TMPDIR": str(tmp_path)}
    command = [sys.executable, str(root / "benchmarks" / "backlog.py")]
    tiny = ["--pending", str(PENDING), "--idle-seconds", "1", "--drain-seconds", "5"]
    done = subprocess.run(
        [*command, *tiny, "--tries", "2", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
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
