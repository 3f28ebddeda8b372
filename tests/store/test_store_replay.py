"""Resend, bulk redrive by time range, and rewind, on a real SQLite store."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from sftriggerd.store.base import Store
from sftriggerd.store.records import Checkpoint, Dead, Delivered, NewEvent
from sftriggerd.store.replay import REDRIVABLE, Requeued, Selection
from tests.store.test_store_contract import LEASE, T0, checkpoint, event


async def finish(store: Store, *outcomes: str) -> list[int]:
    """Claims one delivery per outcome, oldest first, and records `delivered` or `dead`."""
    ids = []
    for outcome in outcomes:
        [claim] = await store.claim_due("hook", 1, LEASE)
        result = Delivered(status=200) if outcome == "delivered" else Dead(status=410, error="gone")
        assert await store.record_outcome(claim, result)
        ids.append(claim.delivery_id)
    return ids


async def test_a_delivered_delivery_is_sent_again_as_the_same_event(store: Store) -> None:
    await store.ingest("t", [event(1, "A")], checkpoint(1))
    [delivered] = await finish(store, "delivered")
    done = await store.requeue(Selection(delivery_id=delivered))
    assert done == Requeued(requeued=1, already_pending=0, endpoints=frozenset({"hook"}))
    [claim] = await store.claim_due("hook", 10, LEASE)
    assert (claim.delivery_id, claim.event_id, claim.body) == (delivered, "evt_1", b'{"n":1}')
    assert claim.attempts == 0
    # Idempotent: a second resend while it is in flight (or pending) queues nothing.
    again = await store.requeue(Selection(delivery_id=delivered))
    assert again == Requeued(requeued=0, already_pending=1)


async def test_a_missing_delivery_matches_nothing(store: Store) -> None:
    assert await store.requeue(Selection(delivery_id=404)) == Requeued(0, 0)


async def test_a_resent_older_change_goes_out_before_the_newer_ones_of_its_record(
    store: Store,
) -> None:
    await store.ingest("t", [event(1, "A"), event(2, "A")], checkpoint(2))
    [first] = await finish(store, "delivered")
    [second] = await store.claim_due("hook", 10, LEASE)
    assert second.event_id == "evt_2"
    assert (await store.requeue(Selection(delivery_id=first))).requeued == 1
    # Held back while the newer change is in flight; another record's change is not.
    await store.ingest("t", [event(3, "B"), event(4, "A")], checkpoint(4))
    assert [c.event_id for c in await store.claim_due("hook", 10, LEASE)] == ["evt_3"]
    assert await store.record_outcome(second, Delivered(status=200))
    # Then the resent one, alone: evt_4 of the same record waits for it.
    [resent] = await store.claim_due("hook", 10, LEASE)
    assert resent.event_id == "evt_1"
    assert await store.claim_due("hook", 10, LEASE) == []
    assert await store.record_outcome(resent, Delivered(status=200))
    assert [c.event_id for c in await store.claim_due("hook", 10, LEASE)] == ["evt_4"]


async def test_bulk_by_endpoint_status_and_time_range(store: Store) -> None:
    await store.ingest("t", [event(n, f"R{n}") for n in range(1, 5)], checkpoint(4))
    delivered, dead, _, _ = await finish(store, "delivered", "dead", "delivered", "dead")
    rows = {row.id: row for row in await store.list_deliveries()}
    made = rows[delivered].created_at
    # Every row was made in the same instant: a range after it takes none, one around it all.
    later = Selection(endpoint="hook", since=made + timedelta(seconds=1))
    assert await store.requeue(later) == Requeued(0, 0)
    before = Selection(endpoint="hook", until=made)
    assert await store.requeue(before) == Requeued(0, 0)
    other = Selection(endpoint="other", since=made - timedelta(seconds=1))
    assert await store.requeue(other) == Requeued(0, 0)
    dead_only = Selection(endpoint="hook", statuses=REDRIVABLE, since=made, until=made + LEASE)
    assert (await store.requeue(dead_only)).requeued == 2
    statuses = {row.id: row.status for row in await store.list_deliveries()}
    assert (statuses[delivered], statuses[dead]) == ("delivered", "pending")
    # A resend of them all: the delivered ones now, the two pending ones left alone.
    everything = Selection(endpoint="hook")
    assert await store.requeue(everything) == Requeued(2, 2, frozenset({"hook"}))
    assert await store.requeue(everything) == Requeued(0, 4)


def streamed(n: int, replay_id: int | str | None, record: str = "A") -> NewEvent:
    body = {"n": n, "source": {"kind": "streaming", "replay_id": replay_id}}
    if replay_id is None:
        body["source"] = {"kind": "polling", "gap_fill": True}
    return replace(event(n, record), body=json.dumps(body).encode())


async def test_a_selection_after_a_replay_id_takes_what_was_stored_from_there(
    store: Store,
) -> None:
    # Replay ids 10, 11, then a gap fill (no replay id), then 12; and a body that is no JSON.
    events = [streamed(1, 10), streamed(2, 11), streamed(3, None, "B"), streamed(4, 12, "C")]
    events.append(replace(event(5, "D"), body=b"not json"))
    await store.ingest("t", events, checkpoint(5))
    await store.ingest("other", [streamed(9, 50, "E")], checkpoint(9, "other"))
    await finish(store, "delivered", "delivered", "delivered", "delivered", "delivered")
    done = await store.requeue(Selection(trigger="t", after_replay_id=10))
    assert done.requeued == 4  # evt_2 onwards, the gap fill and the unreadable body among them
    pending = await store.list_deliveries(status="pending")
    resent = sorted(row.event_id for row in pending if row.trigger == "t")
    assert resent == ["evt_2", "evt_3", "evt_4", "evt_5"]  # other triggers' are not taken
    past_all = await store.requeue(Selection(trigger="t", after_replay_id=12))
    assert past_all == Requeued(0, 0)
    with pytest.raises(ValueError):
        await store.requeue(Selection(after_replay_id=1))


async def test_a_selection_after_a_pubsub_replay_id_takes_what_was_stored_after_it(
    store: Store,
) -> None:
    # Pub/Sub replay ids are base64 text with no order: the selection goes by storage order.
    # Two events share "AAAB" (a change merged for two records), then a gap fill, then "AAAA",
    # which sorts before it as text and is still taken.
    events = [
        streamed(1, "AAAC"),
        streamed(2, "AAAB"),
        streamed(3, "AAAB", "B"),
        streamed(4, None, "C"),
        streamed(5, "AAAA", "D"),
        streamed(6, 12, "E"),  # a CometD body of the same trigger, before a switch
    ]
    await store.ingest("t", events, checkpoint(6))
    await store.ingest("other", [streamed(9, "AAAB", "F")], checkpoint(9, "other"))
    await finish(store, *["delivered"] * 7)
    done = await store.requeue(Selection(trigger="t", after_replay_token="AAAB"))
    assert done.requeued == 3
    pending = await store.list_deliveries(status="pending")
    assert sorted(row.event_id for row in pending) == ["evt_4", "evt_5", "evt_6"]
    # A replay id no stored event carries selects nothing; after the last one, nothing new.
    assert await store.requeue(Selection(trigger="t", after_replay_token="ZZZZ")) == Requeued(0, 0)
    last = await store.requeue(Selection(trigger="t", after_replay_token="AAAA"))
    assert last == Requeued(0, 1)  # evt_6, pending already
    with pytest.raises(ValueError):
        await store.requeue(Selection(after_replay_token="AAAB"))


async def test_a_selection_by_change_time(store: Store) -> None:
    await store.ingest("t", [event(n, f"R{n}") for n in range(1, 4)], checkpoint(3))
    await finish(store, "delivered", "delivered", "delivered")
    selection = Selection(trigger="t", occurred_since=T0 + timedelta(seconds=2))
    assert (await store.requeue(selection)).requeued == 2


async def test_rewind_moves_the_checkpoint_back_and_clears_its_event_time(store: Store) -> None:
    later = Checkpoint(trigger="t", position={"replay_id": 9}, event_time=T0 + LEASE)
    await store.ingest("t", [], later)
    await store.rewind("t", Checkpoint(trigger="t", position={"replay_id": 3}))
    saved = await store.checkpoint("t")
    assert saved is not None and saved.position == {"replay_id": 3}
    assert saved.event_time is None and saved.updated_at is not None
    # A trigger without a checkpoint gets one; the next ingest moves on from there.
    await store.rewind("new", Checkpoint(trigger="new", position={"replay_id": 1}, event_time=T0))
    assert (await store.checkpoint("new")) is not None
    await store.ingest("t", [event(1)], checkpoint(4))
    assert (await store.checkpoint("t")).position == checkpoint(4).position  # type: ignore[union-attr]
