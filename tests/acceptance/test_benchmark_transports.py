"""`benchmarks/transports.py` runs end to end: both transports, every event stored (no timings
asserted: those are figures for people, in docs/performance.md)."""

from __future__ import annotations

import json

import pytest

from tests.acceptance.benchmarks import run_benchmark

pytestmark = pytest.mark.slow


def test_transport_benchmark_stores_every_event_over_both_transports() -> None:
    done = run_benchmark("transports.py", "--events", "20", "--rounds", "1", "--json", timeout_s=90)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["events"] == 20
    legs = {leg["transport"]: leg for leg in report["legs"]}
    assert sorted(legs) == ["cometd", "pubsub"]
    for leg in legs.values():
        assert leg["events"] == 20 and leg["messages"] == 20
        assert 0 < leg["first_stored_s"] <= leg["all_stored_s"]
