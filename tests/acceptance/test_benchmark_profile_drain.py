"""`benchmarks/profile_drain.py` drains a committed backlog end to end, with the store on its
thread and, as an experiment, on the loop's (no timings asserted: figures for people, in
docs/performance.md; the profiler itself, yappi, is a tool and not installed here)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sftriggerd

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("flag", "where"), [(None, "store thread"), ("--inline-store", "inline")])
def test_the_drain_delivers_every_committed_delivery(flag: str | None, where: str) -> None:
    root = Path(__file__).parents[2]
    env = {**os.environ, "PYTHONPATH": str(Path(sftriggerd.__file__).parents[1])}
    command = [sys.executable, str(root / "benchmarks" / "profile_drain.py")]
    done = subprocess.run(
        [*command, "--events", "200", "--no-profile", *([flag] if flag else [])],
        cwd=root / "benchmarks",
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    line = re.search(
        r"^200 deliveries: [\d,]+/s, process CPU \d+ µs each \((.+?),", done.stdout, re.M
    )
    assert line is not None, done.stdout
    assert line.group(1).startswith(where)
