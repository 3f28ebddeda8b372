"""Per-record order as a property: whatever mix of ingests, claims, outcomes, redrives,
resends (of delivered changes too) and lapsed leases, a claim never puts a second delivery of
a record in flight, always takes the oldest open change of the record, and nothing open stays
stuck."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sftriggerd.store.base import Store
from sftriggerd.store.records import Claim, Dead, Delivered, Retry
from sftriggerd.store.replay import Selection
from sftriggerd.store.sqlite import SqliteStore
from tests.store.test_store_contract import LEASE, checkpoint, event
from tests.support.clock import FrozenClock

RECORDS = ("A", "B")

steps = st.lists(
    st.one_of(
        st.tuples(st.just("ingest"), st.sampled_from(RECORDS)),
        st.tuples(st.just("claim"), st.integers(1, 4)),
        st.tuples(st.just("outcome"), st.integers(0, 9), st.sampled_from(["ok", "retry", "dead"])),
        st.tuples(st.just("redrive")),
        st.tuples(st.just("resend"), st.integers(0, 9)),
        st.tuples(st.just("lapse")),
    ),
    max_size=40,
)


@dataclass
class Model:
    record: dict[int, str] = field(default_factory=dict)  # delivery id -> record
    open: set[int] = field(default_factory=set)
    dead: set[int] = field(default_factory=set)
    delivered: set[int] = field(default_factory=set)
    held: list[Claim] = field(default_factory=list)  # claims not yet answered
    # The store's clock, moved by the test alone.
    clock: FrozenClock = field(default_factory=lambda: FrozenClock(datetime.now(UTC)))

    def check_claims(self, claims: list[Claim]) -> None:
        now = self.clock()
        for claim in claims:
            key = self.record[claim.delivery_id]
            assert claim.delivery_id in self.open
            assert claim.delivery_id == min(i for i in self.open if self.record[i] == key)
            live_same_record = [
                held
                for held in self.held
                if self.record[held.delivery_id] == key
                and held.lease_until > now
                and held.delivery_id != claim.delivery_id
            ]
            assert live_same_record == [], (claim, live_same_record)
            self.held.append(claim)


async def play(actions: list[tuple[object, ...]]) -> None:
    model = Model()
    store = SqliteStore(":memory:", clock=model.clock)
    await store.open()
    try:
        for action in actions:
            await apply(store, model, action)
        await drain(store, model)
    finally:
        await store.close()


async def apply(store: Store, model: Model, action: tuple[object, ...]) -> None:
    if action[0] == "ingest":
        n = len(model.record) + 1
        await store.ingest("t", [event(n, str(action[1]))], checkpoint(n))
        model.record[n] = str(action[1])  # one endpoint: delivery ids follow the events
        model.open.add(n)
    elif action[0] == "claim":
        model.check_claims(await store.claim_due("hook", int(action[1]), LEASE))
    elif action[0] == "outcome" and model.held:
        claim = model.held.pop(int(action[1]) % len(model.held))  # type: ignore[call-overload]
        await answer(store, model, claim, str(action[2]))
    elif action[0] == "redrive":
        count = await store.redrive_endpoint("hook")
        assert count == len(model.dead)
        model.open |= model.dead
        model.dead.clear()
    elif action[0] == "resend" and model.record:
        delivery_id = int(action[1]) % len(model.record) + 1  # type: ignore[call-overload]
        done = await store.requeue(Selection(delivery_id=delivery_id))
        finished = delivery_id in model.dead | model.delivered
        assert (done.requeued, done.already_pending) == (int(finished), int(not finished))
        if finished:
            model.dead.discard(delivery_id)
            model.delivered.discard(delivery_id)
            model.open.add(delivery_id)
    elif action[0] == "lapse":
        model.clock.advance(LEASE + timedelta(seconds=1))


async def answer(store: Store, model: Model, claim: Claim, kind: str) -> None:
    outcome = (
        Delivered(status=200)
        if kind == "ok"
        else Retry(delay=timedelta(0), status=500, error="HTTP 500")
        if kind == "retry"
        else Dead(status=410, error="gone")
    )
    if not await store.record_outcome(claim, outcome):
        return  # its lease ran out and another claim took the delivery
    if kind == "ok":
        model.open.discard(claim.delivery_id)
        model.delivered.add(claim.delivery_id)
    elif kind == "dead":
        model.open.discard(claim.delivery_id)
        model.dead.add(claim.delivery_id)


async def drain(store: Store, model: Model) -> None:
    """Every open delivery goes out in the end, each record's oldest first."""
    for _ in range(4 * len(model.record) + 4):
        if not model.open:
            return
        model.clock.advance(LEASE + timedelta(seconds=1))
        model.held.clear()  # their holders are gone: their leases have lapsed
        claims = await store.claim_due("hook", 10, LEASE)
        model.check_claims(claims)
        for claim in claims:
            model.held.remove(claim)
            await answer(store, model, claim, "ok")
    assert not model.open, f"stuck: {sorted(model.open)}"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
# A dead older change redriven while a newer one of its record is in flight.
@example(
    [
        ("ingest", "A"),
        ("ingest", "A"),
        ("claim", 4),
        ("outcome", 0, "dead"),
        ("claim", 4),
        ("redrive",),
        ("claim", 4),
    ]
)
# A delivered older change resent while a newer one of its record is in flight.
@example(
    [
        ("ingest", "A"),
        ("ingest", "A"),
        ("claim", 4),
        ("outcome", 0, "ok"),
        ("claim", 4),
        ("resend", 0),
        ("ingest", "A"),
        ("claim", 4),
        ("outcome", 0, "ok"),
        ("claim", 4),
    ]
)
def test_one_delivery_per_record_in_flight_oldest_first_and_none_stuck(
    actions: list[tuple[object, ...]],
) -> None:
    asyncio.run(play(actions))
