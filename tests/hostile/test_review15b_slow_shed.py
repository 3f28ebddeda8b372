"""Review of issue 15 (second round): one trigger's drain hurts the replica's other triggers.

A round renews every lease first, then sheds what is over the fair share: `_release` waits for
the shed trigger's source to drain (up to the lease's end; a `RestartableSource` drains for up
to 10 s, a poll cycle finishing its pages) before the round ends. The other leases were renewed
at the round's start only, so while the one source drains the watchdog stops every other source
of the replica ("lease_unrenewed_stopping_source"), and the round, cut off by its own timeout at
the lease's length, leaves their leases to run out: a second replica joining (the very thing
that causes a shed) thus stops the triggers that were never to move. The next renewal comes
only after the drain plus the `renew_every` sleep: the others are stopped once the drain passes
`lasting - margin - renew_every`. Scaled down here: the real loop (`Leadership.run`, its
watchdog), `ha.takeover` 3 s and `renew_every` 1 s (a lease of 2 s, sources told to stop 0.5 s
before its end), and a drain of 0.8 s: at the defaults (15 s, 5 s) a drain over 2.5 s does the
same, well under the 10 s a source is allowed (a poll cycle finishing its pages)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from structlog.testing import capture_logs

from sftriggerd.ingest import Ingest
from sftriggerd.leadership import Leadership, Timing
from sftriggerd.metrics import Metrics
from sftriggerd.store.base import Store
from tests.leadership.replicas import RecordingSource
from tests.support.waiting import eventually

FAST = Timing(takeover=timedelta(seconds=3), renew_every=timedelta(seconds=1))
DRAIN_S = 0.8


class SlowDrainSource(RecordingSource):
    """Runs until told to stop, then takes `DRAIN_S` to finish its batch in hand."""

    async def run(self, stopping: asyncio.Event) -> None:
        self.running, self.runs = True, self.runs + 1
        try:
            await stopping.wait()
            await asyncio.sleep(DRAIN_S)
        finally:
            self.running, self.stops = False, self.stops + 1


async def heartbeats(store: Store, name: str, stopping: asyncio.Event) -> None:
    """Another replica: live (heartbeating), leading nothing yet."""
    while not stopping.is_set():
        await store.heartbeat(name, timedelta(minutes=5))
        await asyncio.sleep(0.3)


async def test_review15b_shedding_a_slow_trigger_leaves_the_others_running(
    store: Store,
) -> None:
    metrics = Metrics()
    ingest = Ingest(store, (), metrics)
    sources: dict[str, RecordingSource] = {
        "t1": RecordingSource("t1", ingest),
        "t2": RecordingSource("t2", ingest),
        "t3": SlowDrainSource("t3", ingest),
    }
    leadership = Leadership(store, "a", sources, FAST, metrics)
    ingest.fence_for = leadership.fence_for
    stopping, other = asyncio.Event(), asyncio.Event()
    with capture_logs() as logs:
        loop = asyncio.create_task(leadership.run(stopping))
        try:
            await eventually(lambda: all(s.running for s in sources.values()))
            # "b" joins: the share drops to 2 and "a" sheds t3 at its next round.
            joined = asyncio.create_task(heartbeats(store, "b", other))
            await eventually(lambda: not sources["t3"].running, timeout_s=5)
            await asyncio.sleep(DRAIN_S + 2 * FAST.renew_every.total_seconds())
            other.set()
            await joined
        finally:
            stopping.set()
            await loop
    unrenewed = [e["trigger"] for e in logs if e["event"] == "lease_unrenewed_stopping_source"]
    assert unrenewed == [], f"stopped for want of a renewal: {unrenewed}"
    assert (sources["t1"].stops, sources["t2"].stops) == (1, 1)  # the hand-over's, only
