"""Hostile review of leadership (issue 15): `ha.renew_every` is accepted up to half of
`ha.takeover`, but the watchdog stops a source `lasting - margin` = 3/4 of
(takeover - renew_every) after its last renewal was sent. From renew_every > 3/7 of takeover,
that comes before the next round's renewal: with no fault at all, every source is stopped each
round and started again by the next renewal (rebuilt, its trigger unread meanwhile), forever."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from sftriggerd.leadership import Timing
from sftriggerd.store.base import Store
from tests.leadership.replicas import replica
from tests.support.waiting import eventually

# Valid by the configuration's rule (renew_every * 2 < takeover): 0.48 * 2 = 0.96 < 1.
NEAR_HALF = Timing(takeover=timedelta(seconds=1), renew_every=timedelta(seconds=0.48))


@pytest.mark.xfail(
    strict=True,
    reason="review15c: with renew_every over 3/7 of takeover the watchdog stops every source"
    " before each renewal",
)
async def test_a_lone_healthy_replica_runs_its_source_once(store: Store) -> None:
    a = replica(store, "a", ("t",), NEAR_HALF)
    stopping = asyncio.Event()
    loop = asyncio.create_task(a.leadership.run(stopping))
    try:
        await eventually(lambda: a.sources["t"].running)
        await asyncio.sleep(6 * NEAR_HALF.renew_every.total_seconds())
        assert a.sources["t"].runs == 1, (
            f"source started {a.sources['t'].runs} times in 6 rounds with no fault"
        )
    finally:
        stopping.set()
        await asyncio.wait_for(loop, 10)
