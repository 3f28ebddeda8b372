"""/metrics of a running admin app, scraped over real HTTP."""

from __future__ import annotations

import re

import aiohttp

from sftriggerd.admin.state import AdminState
from sftriggerd.config import parse_settings
from sftriggerd.metrics import Metrics
from tests.support.admin import Serve

CONFIG = """
salesforce: {auth: {client_id: c, client_secret: s, username: u, password: p}}
server: {listen: "127.0.0.1:0"}
"""
# A sample line: the metric name, then its labels or the value.
_SAMPLE_NAME = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]")


async def scrape(serve: Serve, metrics: Metrics) -> str:
    state = AdminState(settings=parse_settings(CONFIG, environ={}), metrics=metrics)
    base = await serve(state)
    async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as response:
        assert response.status == 200
        return await response.text()


def sample_names(text: str) -> set[str]:
    return {
        found.group(1)
        for line in text.splitlines()
        if not line.startswith("#") and (found := _SAMPLE_NAME.match(line))
    }


async def test_metrics_has_no_created_series(serve: Serve) -> None:
    metrics = Metrics()
    # Children of each kind that would carry a `_created` sample: a counter, a labelled
    # histogram, and the label-less takeover histogram.
    metrics.deliveries.labels(endpoint="hook", outcome="delivered").inc()
    metrics.delivery_attempt_seconds.labels(endpoint="hook").observe(0.2)
    metrics.takeover_seconds.observe(1.0)
    names = sample_names(await scrape(serve, metrics))
    assert {
        "sftriggerd_deliveries_total",
        "sftriggerd_delivery_attempt_seconds_bucket",
        "sftriggerd_takeover_seconds_count",
    } <= names
    assert [name for name in names if name.endswith("_created")] == []
