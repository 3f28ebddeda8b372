"""`benchmarks/profile_drain.py` drains a committed backlog end to end, with the store on its
thread and, as an experiment, on the loop's (no timings asserted: figures for people, in
docs/performance.md; the profiler itself, yappi, is a tool and not installed here)."""

from __future__ import annotations

import re

import pytest

from tests.acceptance.benchmarks import ROOT, run_benchmark

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("flag", "where"), [(None, "store thread"), ("--inline-store", "inline")])
def test_the_drain_delivers_every_committed_delivery(flag: str | None, where: str) -> None:
    done = run_benchmark(
        "profile_drain.py",
        *["--events", "200", "--no-profile", *([flag] if flag else [])],
        cwd=ROOT / "benchmarks",
        timeout_s=90,
    )
    assert done.returncode == 0, done.stderr
    line = re.search(
        r"^200 deliveries: [\d,]+/s, process CPU \d+ µs each \((.+?),", done.stdout, re.M
    )
    assert line is not None, done.stdout
    assert line.group(1).startswith(where)
