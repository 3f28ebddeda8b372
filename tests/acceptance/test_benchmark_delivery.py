"""`benchmarks/delivery.py` runs end to end with its events fanned out to two endpoints: every
leg delivers each event to both routes of the receiver (no timings asserted: those are
figures for people, in docs/performance.md)."""

from __future__ import annotations

import re

import pytest

from tests.acceptance.benchmarks import run_benchmark

pytestmark = pytest.mark.slow


def test_delivery_benchmark_fans_every_event_out_to_each_endpoint() -> None:
    done = run_benchmark(
        "delivery.py", "--events", "40", "--endpoints", "2", "--concurrency", "4", "--batch", "10"
    )
    assert done.returncode == 0, done.stderr
    assert "2 endpoint(s), loop asyncio" in done.stdout
    # Live and backlog, each 40 events to 2 endpoints: 160 POSTs the receiver counted.
    assert "the receiver saw 160 POSTs for 4 x 40 deliveries" in done.stdout, done.stdout
    assert re.search(r"raw POSTs\s*: 80 in ", done.stdout), done.stdout
    assert re.search(r"durable, live\s*: 80 in .* p95 .* max ", done.stdout), done.stdout
    assert re.search(r"durable, backlog: 80 in ", done.stdout), done.stdout
