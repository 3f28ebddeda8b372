"""The page's reader of the last hour: after one whole read it asks the store only for the
last two minutes, and still shows what a whole read would (real stores, every engine)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from sftriggerd.admin.activity_view import ACTIVITY_WINDOW, LATEST_SHOWN, ActivityReader
from sftriggerd.store.activity import RecentActivity
from sftriggerd.store.base import Store
from sftriggerd.store.records import Checkpoint, Dead, Delivered, NewEvent
from tests.support.clock import ShiftedClock

LEASE = timedelta(seconds=30)
_names = itertools.count()


async def finish(store: Store, delivered: int, dead: int) -> list[int]:
    """`delivered` + `dead` deliveries to `hook`, finished now; their ids."""
    events = [
        NewEvent(
            event_id=f"evt_{next(_names)}",
            record_id="r",
            occurred_at=datetime.now(UTC),
            body=b"{}",
            endpoints=("hook",),
        )
        for _ in range(delivered + dead)
    ]
    await store.ingest("t", events, Checkpoint(trigger="t", position={}))
    claims = await store.claim_due("hook", len(events), LEASE)
    for n, claim in enumerate(claims):
        outcome = Delivered(status=200) if n < delivered else Dead(status=410, error="gone")
        await store.record_outcome(claim, outcome)
    return [claim.delivery_id for claim in claims]


def seen(activity: RecentActivity) -> tuple[object, ...]:
    return (activity.tallies, [delivery.id for delivery in activity.latest])


async def whole_hour(store: Store) -> tuple[object, ...]:
    return seen(await store.recent_activity(ACTIVITY_WINDOW, LATEST_SHOWN))


async def test_increments_show_what_a_whole_read_shows(store: Store, clock: ShiftedClock) -> None:
    reader = ActivityReader()
    clock.advance(-timedelta(minutes=30))  # finished half an hour ago
    await finish(store, delivered=2, dead=1)
    clock.advance(timedelta(minutes=30))
    await finish(store, delivered=1, dead=0)
    first = await reader.read(store, 0.0)
    assert seen(first) == await whole_hour(store) and len(first.tallies) == 2

    # The minute of half an hour ago is kept from the first read, not read again.
    *_, dead = await finish(store, delivered=LATEST_SHOWN, dead=1)
    assert seen(await reader.read(store, 5.0)) == await whole_hour(store)

    # A redriven delivery leaves its minute's dead count: the minute is counted afresh. The
    # feed is a log of finishes: its dead finish stays listed until newer ones push it out.
    assert await store.redrive(dead)
    refreshed = await reader.read(store, 10.0)
    assert refreshed.tallies == (await store.recent_activity(ACTIVITY_WINDOW, 1)).tallies
    assert sum(tally.dead for tally in refreshed.tallies) == 1
    assert refreshed.latest[0].id == dead and refreshed.latest[0].status == "dead"

    # After a pause the whole hour is read again.
    await finish(store, delivered=1, dead=0)
    assert seen(await reader.read(store, 100.0)) == await whole_hour(store)


async def test_the_latest_stay_when_the_last_two_minutes_hold_fewer(store: Store) -> None:
    reader = ActivityReader()
    first = await finish(store, delivered=3, dead=0)
    await reader.read(store, 0.0)
    later = await finish(store, delivered=1, dead=0)
    activity = await reader.read(store, 5.0)
    assert [delivery.id for delivery in activity.latest] == [*later, *reversed(first)]
