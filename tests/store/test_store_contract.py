"""What every store engine must do; the one rule (a position moves only with its events),
tested at the interface."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sftriggerd.errors import StoreError
from sftriggerd.routing import order_key
from sftriggerd.store.base import Store
from sftriggerd.store.records import (
    AttemptTrace,
    Checkpoint,
    Dead,
    Delivered,
    NewEvent,
    PoisonEvent,
    Retry,
)
from tests.support.clock import ShiftedClock

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def event(
    n: int,
    record: str | None = "001A",
    endpoints: tuple[str, ...] = ("hook",),
    ordered: bool = True,
) -> NewEvent:
    return NewEvent(
        event_id=f"evt_{n}",
        record_id=record,
        occurred_at=T0 + timedelta(seconds=n),
        body=f'{{"n":{n}}}'.encode(),
        endpoints=endpoints,
        ordered_endpoints=frozenset(endpoints) if ordered else frozenset(),
        order_key=order_key("t", record),
    )


def checkpoint(position: int, trigger: str = "t") -> Checkpoint:
    return Checkpoint(
        trigger=trigger,
        position={"replay_id": position},
        event_time=T0 + timedelta(seconds=position),
    )


async def test_schema_is_current_and_reopening_changes_nothing(store: Store) -> None:
    version = await store.schema_version()
    assert version >= 1
    await store.open()
    assert await store.schema_version() == version
    assert await store.ping()


async def test_ingest_stores_events_deliveries_and_checkpoint_together(store: Store) -> None:
    result = await store.ingest("t", [event(1), event(2, endpoints=("a", "b"))], checkpoint(2))
    assert (result.new_events, result.duplicate_events, result.deliveries) == (2, 0, 3)
    saved = await store.checkpoint("t")
    assert saved is not None and saved.position == {"replay_id": 2}
    assert saved.event_time == T0 + timedelta(seconds=2)
    counts = await store.outbox_counts()
    assert {name: c.pending for name, c in counts.items()} == {"hook": 1, "a": 1, "b": 1}


async def test_ingest_is_idempotent_per_trigger(store: Store) -> None:
    await store.ingest("t", [event(1)], checkpoint(1))
    again = await store.ingest("t", [event(1), event(2)], checkpoint(2))
    assert (again.new_events, again.duplicate_events) == (1, 1)
    other = await store.ingest("u", [event(1)], checkpoint(1, trigger="u"))
    assert other.new_events == 1  # the same event id under another trigger is another event
    assert len(await store.list_deliveries()) == 3


async def test_a_failed_ingest_moves_nothing(store: Store) -> None:
    await store.ingest("t", [event(1)], checkpoint(1))
    broken = NewEvent(
        event_id="evt_bad", record_id=None, occurred_at=T0, body=None, endpoints=("hook",)
    )  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        await store.ingest("t", [event(2), broken], checkpoint(9))
    saved = await store.checkpoint("t")
    assert saved is not None and saved.position == {"replay_id": 1}
    assert [d.event_id for d in await store.list_deliveries()] == ["evt_1"]


async def test_poison_is_kept_with_the_checkpoint_it_moves_past(store: Store) -> None:
    bad = PoisonEvent(trigger="t", reason="no ChangeEventHeader", message='{"data": 1}')
    await store.ingest("t", [event(1)], checkpoint(2), poison=[bad])
    other = PoisonEvent(trigger="u", reason="not JSON", message="\\ud800", received_at=T0)
    await store.ingest("u", [], checkpoint(1, trigger="u"), poison=[other])
    listed = await store.list_poison()
    assert [(p.trigger, p.reason, p.message) for p in listed] == [
        ("u", "not JSON", "\\ud800"),
        ("t", "no ChangeEventHeader", '{"data": 1}'),
    ]
    assert listed[0].received_at == T0 and listed[1].received_at is not None
    assert [p.trigger for p in await store.list_poison(trigger="t")] == ["t"]
    assert len(await store.list_poison(limit=1)) == 1
    broken = NewEvent(
        event_id="evt_bad", record_id=None, occurred_at=T0, body=None, endpoints=("hook",)
    )  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        await store.ingest("t", [broken], checkpoint(9), poison=[bad])
    assert len(await store.list_poison(trigger="t")) == 1  # rolled back with the rest


async def test_ingest_without_a_checkpoint_leaves_it_where_it_was(store: Store) -> None:
    await store.ingest("t", [event(1)], checkpoint(1))
    result = await store.ingest("t", [event(2), event(3)], None)
    assert result.new_events == 2
    saved = await store.checkpoint("t")
    assert saved is not None and saved.position == {"replay_id": 1}
    assert await store.checkpoint("fresh") is None
    await store.ingest("fresh", [event(1)], None)
    assert await store.checkpoint("fresh") is None


async def test_empty_ingest_moves_the_checkpoint_and_keeps_its_event_time(store: Store) -> None:
    await store.ingest("t", [event(1)], checkpoint(1))
    await store.ingest("t", [], Checkpoint(trigger="t", position={"replay_id": 5}))
    saved = await store.checkpoint("t")
    assert saved is not None and saved.position == {"replay_id": 5}
    assert saved.event_time == T0 + timedelta(seconds=1)
    assert [c.trigger for c in await store.checkpoints()] == ["t"]


async def test_claims_are_oldest_first_limited_and_leased(store: Store) -> None:
    events = [event(n, record=f"r{n}") for n in range(5)]
    await store.ingest("t", events, checkpoint(5))
    first = await store.claim_due("hook", 3, LEASE)
    assert [c.event_id for c in first] == ["evt_0", "evt_1", "evt_2"]
    assert first[0].body == b'{"n":0}' and first[0].attempts == 0 and first[0].trigger == "t"
    second = await store.claim_due("hook", 10, LEASE)
    assert [c.event_id for c in second] == ["evt_3", "evt_4"]
    assert await store.claim_due("hook", 10, LEASE) == []
    assert await store.claim_due("other", 10, LEASE) == []


async def test_an_expired_lease_is_claimable_again_and_the_old_claim_loses(
    store: Store, clock: ShiftedClock
) -> None:
    await store.ingest("t", [event(1)], checkpoint(1))
    [stale] = await store.claim_due("hook", 1, LEASE)
    clock.advance(LEASE + timedelta(seconds=1))
    [fresh] = await store.claim_due("hook", 1, LEASE)
    assert fresh.delivery_id == stale.delivery_id and fresh.lease_token != stale.lease_token
    assert not await store.record_outcome(stale, Delivered(status=200))
    assert await store.record_outcome(fresh, Delivered(status=200))
    [row] = await store.list_deliveries()
    assert (row.status, row.attempts, row.last_status) == ("delivered", 1, 200)


async def test_per_record_order_holds_across_retries(store: Store, clock: ShiftedClock) -> None:
    await store.ingest("t", [event(1, "A"), event(2, "A"), event(3, "B")], checkpoint(3))
    claims = await store.claim_due("hook", 10, LEASE)
    assert [c.event_id for c in claims] == ["evt_1", "evt_3"]
    first, other_record = claims
    await store.record_outcome(other_record, Delivered(status=200))
    await store.record_outcome(first, Retry(delay=timedelta(hours=1), status=500, error="HTTP 500"))
    # The older change for A waits an hour; the newer one must wait with it.
    assert await store.claim_due("hook", 10, LEASE) == []
    clock.advance(timedelta(hours=2))
    [again] = await store.claim_due("hook", 10, LEASE)
    assert again.event_id == "evt_1" and again.attempts == 1
    await store.record_outcome(again, Delivered(status=204))
    [newer] = await store.claim_due("hook", 10, LEASE)
    assert newer.event_id == "evt_2"


async def test_unordered_endpoints_send_a_records_changes_together(store: Store) -> None:
    await store.ingest(
        "t", [event(1, "A", ordered=False), event(2, "A", ordered=False)], checkpoint(2)
    )
    assert len(await store.claim_due("hook", 10, LEASE)) == 2


async def test_a_dead_delivery_no_longer_blocks_its_record(store: Store) -> None:
    await store.ingest("t", [event(1, "A"), event(2, "A")], checkpoint(2))
    [first] = await store.claim_due("hook", 10, LEASE)
    await store.record_outcome(first, Dead(status=410, error="HTTP 410 Gone"))
    [second] = await store.claim_due("hook", 10, LEASE)
    assert second.event_id == "evt_2"


async def test_outcomes_listing_and_counts(store: Store, clock: ShiftedClock) -> None:
    await store.ingest("t", [event(n, record=f"r{n}") for n in range(3)], checkpoint(3))
    ok, retry, dead = await store.claim_due("hook", 3, LEASE)
    later = clock() + timedelta(minutes=5)
    await store.record_outcome(ok, Delivered(status=200))
    await store.record_outcome(
        retry, Retry(delay=timedelta(minutes=5), status=None, error="timeout")
    )
    await store.record_outcome(dead, Dead(status=410, error="HTTP 410 Gone"))
    rows = {row.event_id: row for row in await store.list_deliveries()}
    assert rows["evt_0"].status == "delivered"
    assert rows["evt_1"].status == "pending" and rows["evt_1"].last_error == "timeout"
    assert rows["evt_1"].next_attempt_at is not None
    assert abs((rows["evt_1"].next_attempt_at - later).total_seconds()) < 1
    assert rows["evt_2"].status == "dead" and rows["evt_2"].last_status == 410
    assert [r.event_id for r in await store.list_deliveries(status="dead")] == ["evt_2"]
    assert [r.id for r in await store.list_deliveries(limit=2)] == sorted(
        (r.id for r in rows.values()), reverse=True
    )[:2]
    counts = (await store.outbox_counts())["hook"]
    assert (counts.pending, counts.dead) == (1, 1)
    due_in = await store.next_due_in("hook")
    assert due_in is not None and timedelta(minutes=4) < due_in <= timedelta(minutes=5)


async def test_recent_activity_counts_finishes_per_minute_and_lists_the_newest(
    store: Store, clock: ShiftedClock
) -> None:
    events = [
        replace(event(n, record=f"r{n}", endpoints=("hook", "b")), change="UPDATE")
        for n in range(4)
    ]
    await store.ingest("t", events, checkpoint(4))
    first, second, given_up, retried = await store.claim_due("hook", 4, LEASE)
    await store.record_outcome(first, Delivered(status=200))
    await store.record_outcome(second, Delivered(status=204))
    await store.record_outcome(given_up, Dead(status=410, error="HTTP 410 Gone"))
    await store.record_outcome(retried, Retry(delay=LEASE, status=503, error="busy"))
    await store.record_outcome((await store.claim_due("b", 1, LEASE))[0], Delivered(200))

    activity = await store.recent_activity(timedelta(hours=1), latest=2)
    totals: dict[str, list[int]] = {}
    for tally in activity.tallies:
        assert activity.now_minute - 1 <= tally.minute <= activity.now_minute
        pair = totals.setdefault(tally.endpoint, [0, 0])
        pair[0] += tally.delivered
        pair[1] += tally.dead
    assert totals == {"hook": [2, 1], "b": [1, 0]}  # a retry is no finish
    newest, before = activity.latest
    assert (newest.endpoint, newest.event_id, newest.status) == ("b", "evt_0", "delivered")
    assert (before.endpoint, before.event_id, before.status) == ("hook", "evt_2", "dead")
    assert (before.trigger, before.record_id, before.change) == ("t", "r2", "UPDATE")
    assert before.last_status == 410
    assert before.occurred_at == T0 + timedelta(seconds=2)
    assert before.finished_at <= newest.finished_at
    assert before.latency_ms > 0
    assert json.loads(before.body) == {"n": 2}

    clock.advance(timedelta(hours=1, minutes=1))
    later = await store.recent_activity(timedelta(hours=1), latest=20)
    assert (later.tallies, later.latest) == ((), ())


async def test_release_gives_claims_back_without_an_attempt(store: Store) -> None:
    await store.ingest("t", [event(1)], checkpoint(1))
    claims = await store.claim_due("hook", 1, LEASE)
    await store.release(claims)
    [again] = await store.claim_due("hook", 1, LEASE)
    assert again.attempts == 0


async def test_redrive_by_id_and_by_endpoint(store: Store) -> None:
    await store.ingest("t", [event(n, record=f"r{n}") for n in range(3)], checkpoint(3))
    for claim in await store.claim_due("hook", 3, LEASE):
        await store.record_outcome(claim, Dead(status=500, error="max age"))
    dead = await store.list_deliveries(status="dead")
    assert await store.redrive(dead[0].id)
    assert not await store.redrive(dead[0].id)  # no longer dead
    assert not await store.redrive(999_999)
    assert await store.redrive_endpoint("hook") == 2
    claims = await store.claim_due("hook", 10, LEASE)
    assert len(claims) == 3 and all(c.attempts == 0 for c in claims)


async def test_prune_removes_old_delivered_rows_only(store: Store, clock: ShiftedClock) -> None:
    await store.ingest("t", [event(1, "A"), event(2, "B")], checkpoint(2))
    delivered, pending = await store.claim_due("hook", 2, LEASE)
    await store.record_outcome(delivered, Delivered(status=200))
    await store.release([pending])
    assert await store.prune(timedelta(hours=1)) == 0  # delivered just now
    clock.advance(timedelta(hours=1, seconds=1))
    assert await store.prune(timedelta(hours=1)) == 1
    assert [r.event_id for r in await store.list_deliveries()] == ["evt_2"]


async def test_many_concurrent_outcomes_commit_together(store: Store) -> None:
    await store.ingest("t", [event(n, record=f"r{n}") for n in range(200)], checkpoint(200))
    claims = await store.claim_due("hook", 200, LEASE)
    results = await asyncio.gather(
        *(store.record_outcome(c, Delivered(status=200)) for c in claims)
    )
    assert all(results)
    assert (await store.outbox_counts()).get("hook") is None


async def test_a_batch_of_outcomes_reports_each_lease_and_records_only_held_ones(
    store: Store, clock: ShiftedClock
) -> None:
    await store.ingest("t", [event(n, record=f"r{n}") for n in range(3)], checkpoint(3))
    first, stale, third = await store.claim_due("hook", 3, LEASE)
    clock.advance(LEASE + timedelta(seconds=1))
    [fresh] = await store.claim_due("hook", 1, LEASE)  # the lapsed lease, taken over
    assert fresh.delivery_id == first.delivery_id
    results = await store.record_outcomes(
        [
            (first, Delivered(status=200)),
            (stale, Delivered(status=201)),
            (third, Dead(status=410, error="HTTP 410 Gone")),
        ]
    )
    assert results == [False, True, True]
    rows = {r.event_id: r for r in await store.list_deliveries()}
    assert (rows["evt_0"].status, rows["evt_0"].attempts) == ("in_flight", 0)
    assert (rows["evt_1"].status, rows["evt_1"].last_status) == ("delivered", 201)
    assert (rows["evt_2"].status, rows["evt_2"].last_status) == ("dead", 410)
    assert await store.record_outcomes([]) == []


async def test_claims_skip_a_long_run_of_in_flight_and_not_yet_due_deliveries(
    store: Store, clock: ShiftedClock
) -> None:
    await store.ingest("t", [event(n, record=f"r{n}") for n in range(300)], checkpoint(300))
    held = await store.claim_due("hook", 100, LEASE)
    retrying = await store.claim_due("hook", 100, LEASE)
    for claim in retrying:
        await store.record_outcome(claim, Retry(timedelta(hours=1), status=500, error="x"))
    claims = await store.claim_due("hook", 10, LEASE)
    assert [c.event_id for c in claims] == [f"evt_{n}" for n in range(200, 210)]
    # The first lease lapses: those come first again, oldest first.
    clock.advance(LEASE + timedelta(seconds=1))
    lapsed = await store.claim_due("hook", 5, LEASE)
    assert [c.event_id for c in lapsed] == [c.event_id for c in held[:5]]


async def test_next_due_is_the_earliest_retry_or_lease_deadline(
    store: Store, clock: ShiftedClock
) -> None:
    assert await store.next_due_in("hook") is None
    await store.ingest("t", [event(n, record=f"r{n}") for n in range(2)], checkpoint(2))
    retried, in_flight = await store.claim_due("hook", 2, timedelta(minutes=10))
    await store.record_outcome(retried, Retry(timedelta(minutes=3), status=500, error="x"))
    due_in = await store.next_due_in("hook")
    assert due_in is not None and timedelta(minutes=2) < due_in <= timedelta(minutes=3)
    await store.record_outcome(retried, Delivered(status=200))  # lease gone: ignored
    clock.advance(timedelta(minutes=4))
    due_in = await store.next_due_in("hook")
    assert due_in is not None and due_in < timedelta(0)  # overdue: negative
    [again] = await store.claim_due("hook", 1, LEASE)
    await store.record_outcome(again, Delivered(status=200))
    due_in = await store.next_due_in("hook")  # only the in-flight one's lease is left
    left = in_flight.lease_until - clock()
    assert due_in is not None and abs((due_in - left).total_seconds()) < 1
    await store.record_outcome(in_flight, Dead(status=410, error="gone"))
    assert await store.next_due_in("hook") is None


async def test_counts_name_every_endpoint_with_open_or_dead_deliveries(store: Store) -> None:
    await store.ingest(
        "t",
        [event(1, endpoints=("a", "b", "c")), event(2, endpoints=("a",)), event(3, "r3", ("d",))],
        checkpoint(3),
    )
    [dead] = await store.claim_due("a", 1, LEASE)
    await store.record_outcome(dead, Dead(status=410, error="gone"))
    [delivered] = await store.claim_due("b", 1, LEASE)
    await store.record_outcome(delivered, Delivered(status=200))
    await store.claim_due("c", 1, LEASE)  # in flight counts as pending
    [only_dead] = await store.claim_due("d", 1, LEASE)
    await store.record_outcome(only_dead, Dead(status=500, error="max_age"))
    counts = await store.outbox_counts()
    assert {name: (c.pending, c.dead) for name, c in counts.items()} == {
        "a": (1, 1),
        "c": (1, 0),
        "d": (0, 1),
    }


async def test_a_claim_carries_what_the_sender_needs(store: Store, clock: ShiftedClock) -> None:
    clock.advance(timedelta(days=3))  # the store stamps with its clock, not the wall's
    before = clock()
    await store.ingest("t", [event(1, endpoints=("hook",))], checkpoint(1))
    after = clock()
    [claim] = await store.claim_due("hook", 1, LEASE)
    assert (claim.endpoint, claim.trigger, claim.event_id) == ("hook", "t", "evt_1")
    assert (claim.body, claim.attempts) == (b'{"n":1}', 0)
    assert claim.occurred_at == T0 + timedelta(seconds=1)
    # Retry age counts from when the delivery was stored, not from when the change happened.
    assert before - timedelta(seconds=1) <= claim.retry_since <= after + timedelta(seconds=1)


async def test_a_claim_that_looks_past_held_back_changes_still_takes_no_more_than_asked(
    store: Store,
) -> None:
    records = ["001A", "001A", "001B", "001C", "001D"]
    await store.ingest("t", [event(n, r) for n, r in enumerate(records, 1)], checkpoint(5))
    claims = await store.claim_due("hook", 2, LEASE)
    assert [c.event_id for c in claims] == ["evt_1", "evt_3"]


def with_record(n: int, record: str, change: str, fields: dict[str, object]) -> NewEvent:
    body = json.dumps({"n": n, "record": fields}).encode()
    return replace(event(n, record), body=body, change=change)


async def test_last_changes_are_the_newest_stored_event_per_record(store: Store) -> None:
    await store.ingest(
        "t",
        [
            with_record(1, "A", "created", {"Name": "first"}),
            with_record(2, "A", "updated", {"Name": "second"}),
            with_record(3, "B", "deleted", {}),
            replace(event(4, "C"), body=b"not json", change="updated"),
        ],
        checkpoint(4),
    )
    await store.ingest("u", [with_record(5, "A", "undeleted", {})], checkpoint(5, "u"))
    found = await store.last_changes("t", ["A", "B", "C", "missing"])
    assert set(found) == {"A", "B", "C"}
    assert (found["A"].change, found["A"].record) == ("updated", {"Name": "second"})
    assert found["A"].occurred_at == T0 + timedelta(seconds=2)
    assert (found["B"].change, found["B"].record) == ("deleted", {})
    assert (found["C"].change, found["C"].record) == ("updated", None)  # unreadable body
    assert await store.last_changes("t", []) == {}
    assert (await store.last_changes("u", ["A"]))["A"].change == "undeleted"


@given(fields=st.dictionaries(st.text(max_size=20), st.text(max_size=50) | st.integers()))
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
async def test_last_changes_give_back_the_record_as_stored(
    store: Store, fields: dict[str, object]
) -> None:
    # Record fields come from Salesforce: any text, kept as sent. One store for all examples:
    # each stores a newer change of the same record.
    n = len(await store.list_deliveries(limit=10_000)) + 1
    await store.ingest("t", [with_record(n, "A", "updated", fields)], checkpoint(n))
    assert (await store.last_changes("t", ["A"]))["A"].record == fields


async def test_one_delivery_and_its_detail(store: Store, clock: ShiftedClock) -> None:
    await store.ingest("t", [event(1, "A")], checkpoint(1))
    [claim] = await store.claim_due("hook", 1, LEASE)
    row = await store.get_delivery(claim.delivery_id)
    assert row is not None and (row.event_id, row.endpoint, row.trigger) == ("evt_1", "hook", "t")
    assert (row.status, row.attempts) == ("in_flight", 0)
    assert row == (await store.list_deliveries())[0]
    started = clock() - timedelta(seconds=1)
    trace = AttemptTrace(started_at=started, duration_ms=12, answer="busy\nnow")
    await store.record_outcome(claim, Retry(timedelta(0), 503, "HTTP 503: busy", trace))
    [claim] = await store.claim_due("hook", 1, LEASE)
    await store.record_outcome(claim, Delivered(status=204))
    detail = await store.get_delivery_detail(claim.delivery_id)
    assert detail is not None and detail.body == b'{"n":1}'
    assert detail.delivery == await store.get_delivery(claim.delivery_id)
    assert detail.delivery.status == "delivered" and detail.delivery.attempts == 2
    first, second = detail.attempts
    assert abs(first.at - started) < timedelta(milliseconds=1)  # as the sender measured it
    assert (first.duration_ms, first.status) == (12, 503)
    assert (first.error, first.answer) == ("HTTP 503: busy", "busy\nnow")
    assert first.next_attempt_at is not None and first.next_attempt_at >= started
    # Without a trace: stamped with the store's clock, no duration, no answer.
    assert (second.status, second.error) == (204, None)
    assert (second.duration_ms, second.answer, second.next_attempt_at) == (None, None, None)
    assert started < second.at <= clock()
    assert await store.get_delivery(claim.delivery_id + 1000) is None
    assert await store.get_delivery_detail(claim.delivery_id + 1000) is None


async def test_a_closed_store_answers_no_ping_and_reopens_with_what_it_held(store: Store) -> None:
    await store.ingest("t", [event(1)], checkpoint(1))
    await store.close()
    assert not await store.ping()
    with pytest.raises(StoreError):
        await store.checkpoints()
    await store.open(create=False)
    assert await store.ping()
    assert [d.event_id for d in await store.list_deliveries()] == ["evt_1"]


async def test_a_position_holding_unstorable_text_is_saved_and_the_trigger_moves_on(
    store: Store,
) -> None:
    """A polled record Id from outside may hold NUL or a lone surrogate; its watermark must
    not make every later ingest of the trigger fail (PostgreSQL's jsonb refuses both)."""
    odd = {"watermark": "2026-11-28T10:00:00Z", "id": "001\x00\ud800", "floor": None}
    await store.ingest("t", [event(1)], Checkpoint(trigger="t", position=odd))
    saved = await store.checkpoint("t")
    assert saved is not None and saved.position["watermark"] == odd["watermark"]
    await store.ingest("t", [event(2)], checkpoint(2))
    moved = await store.checkpoint("t")
    assert moved is not None and moved.position == {"replay_id": 2}
