"""`benchmarks/transports.py` runs end to end: both transports, every event stored (no timings
asserted: those are figures for people, in docs/performance.md)."""

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


def test_transport_benchmark_stores_every_event_over_both_transports() -> None:
    root = Path(__file__).parents[2]
    packages = [Path(p.__file__).parents[1] for p in (sftriggerd, sftriggerd_emulator)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, packages))}
    command = [sys.executable, str(root / "benchmarks" / "transports.py")]
    done = subprocess.run(
        [*command, "--events", "20", "--rounds", "1", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["events"] == 20
    legs = {leg["transport"]: leg for leg in report["legs"]}
    assert sorted(legs) == ["cometd", "pubsub"]
    for leg in legs.values():
        assert leg["events"] == 20 and leg["messages"] == 20
        assert 0 < leg["first_stored_s"] <= leg["all_stored_s"]
