"""Hostile review of leadership (issue 15): `ha.renew_every` is accepted up to half of
`ha.takeover`, but the watchdog stops a source `lasting - margin` = 3/4 of
(takeover - renew_every) after its last renewal was sent. From renew_every > 3/7 of takeover,
that comes before the next round's renewal: with no fault at all, every source is stopped each
round and started again by the next renewal (rebuilt, its trigger unread meanwhile), forever.

Fixed by the configuration's rule: `ha.renew_every` at most a third of `ha.takeover` (the
default), where the next renewal always comes first."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from sftriggerd.config import parse_settings
from sftriggerd.errors import ConfigError
from sftriggerd.leadership import Timing
from sftriggerd.store.base import Store
from tests.leadership.replicas import replica
from tests.support.waiting import eventually

HEAD = "salesforce:\n  auth: {client_id: cid, client_secret: cs, username: u, password: p}\n"
# The longest renewal period the configuration accepts.
# The longest renewal the configuration allows (a third), at a takeover long enough that a
# round slowed by a loaded machine stays inside the watchdog margin (0.5 s here).
AT_MOST = Timing(takeover=timedelta(seconds=3), renew_every=timedelta(seconds=1))


def test_a_renewal_near_half_the_takeover_is_refused() -> None:
    text = HEAD + "ha:\n  takeover: 6s\n  renew_every: 2880ms\n"
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, "c.yaml", {})
    assert any("must be at most a third of ha.takeover" in p for p in caught.value.problems)


async def test_a_lone_healthy_replica_runs_its_source_once(store: Store) -> None:
    a = replica(store, "a", ("t",), AT_MOST)
    stopping = asyncio.Event()
    loop = asyncio.create_task(a.leadership.run(stopping))
    try:
        await eventually(lambda: a.sources["t"].running)
        await asyncio.sleep(6 * AT_MOST.renew_every.total_seconds())
        assert a.sources["t"].runs == 1, (
            f"source started {a.sources['t'].runs} times in 6 rounds with no fault"
        )
    finally:
        stopping.set()
        await asyncio.wait_for(loop, 10)
