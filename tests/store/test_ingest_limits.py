"""Ids from outside that no store index can hold (issue 15's review): a record id or event id
of kilobytes is kept as poison by ingest, on every engine alike, and the trigger goes on.

On PostgreSQL such an id used to fail the batch ("index row size exceeds btree maximum") on
every retry, so the source retried the same batch for ever and the trigger stopped."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import string
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sftriggerd.events.model import Event
from sftriggerd.ingest import ID_LIMIT_BYTES, Ingest, id_bytes
from sftriggerd.metrics import Metrics
from sftriggerd.store.base import Store
from sftriggerd.store.postgres import PostgresStore
from sftriggerd.store.records import Checkpoint, Delivered
from tests.unit.test_routing import ENDPOINTS

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
# Random, so PostgreSQL cannot compress the index entry below its limit (a repeated
# character would fit compressed and prove nothing).
_RANDOM = random.Random(15)
HUGE_RECORD_ID = "001" + "".join(_RANDOM.choices(string.ascii_letters + string.digits, k=3000))
# 3004 bytes of UTF-8 in 1504 characters.
HUGE_EVENT_ID = "evt_" + "".join(_RANDOM.choices("éñøßçåüö", k=1500))


def account_event(n: int, **changes: object) -> Event:
    event = Event(
        id=f"evt_{n}",
        trigger="accounts",
        object="Account",
        change="updated",
        record_id=f"001{n:015d}",
        occurred_at=T0,
        source={"kind": "polling", "watermark": "x"},
        record={"Id": f"001{n:015d}"},
    )
    return dataclasses.replace(event, **changes)  # type: ignore[arg-type]


async def deliver_all(store: Store, endpoint: str) -> list[str]:
    """Claims every due delivery of the endpoint and records it delivered; the event ids."""
    claims = await store.claim_due(endpoint, 100, timedelta(seconds=30))
    for claim in claims:
        assert await store.record_outcome(claim, Delivered(status=200))
    return sorted(claim.event_id for claim in claims)


def test_the_limit_counts_utf8_bytes_and_fits_every_id_the_daemon_makes() -> None:
    assert id_bytes("001D000000KnaXjIAJ") == 18
    assert id_bytes("\ud800") == 3  # stored as U+FFFD on PostgreSQL: three bytes
    assert id_bytes(HUGE_EVENT_ID) > ID_LIMIT_BYTES >= len("evt_") + 32


async def test_over_long_ids_are_poison_and_the_rest_of_the_batch_is_delivered(
    store: Store,
) -> None:
    metrics = Metrics()
    ingest = Ingest(store, ENDPOINTS, metrics, chunk_events=2)
    at_limit = "a" * ID_LIMIT_BYTES
    batch = [
        account_event(1),
        account_event(2, record_id=HUGE_RECORD_ID, record={"Id": HUGE_RECORD_ID}),
        account_event(3, id=HUGE_EVENT_ID),
        account_event(4, record_id=at_limit),  # exactly at the limit: stored
        account_event(5),
    ]
    # A polling source asks for the last changes of the rows it read, the huge one too.
    assert await store.last_changes("accounts", [HUGE_RECORD_ID, at_limit]) == {}
    cp = Checkpoint(trigger="accounts", position={"watermark": "2026-11-28T10:00:00.000Z"})
    result = await ingest("accounts", batch, cp)

    assert (result.new_events, result.duplicate_events) == (3, 0)
    assert await deliver_all(store, "all") == ["evt_1", "evt_4", "evt_5"]
    assert (await store.last_changes("accounts", [at_limit]))[at_limit].occurred_at == T0
    saved = await store.checkpoint("accounts")
    assert saved is not None and saved.position == cp.position
    poison = sorted(await store.list_poison("accounts"), key=lambda p: p.reason)
    assert [p.reason.split(" ", 2)[:2] for p in poison] == [["event", "id"], ["record", "id"]]
    for kept, size in zip(poison, (3004, 3003), strict=True):
        assert f"is {size} bytes long; ids longer than {ID_LIMIT_BYTES} bytes" in kept.reason
        assert len(kept.reason) < 200  # the id itself is cut short in the reason
    assert HUGE_RECORD_ID in poison[1].message  # the message keeps the whole record
    sample = metrics.registry.get_sample_value
    assert sample("sftriggerd_poison_events_total", {"trigger": "accounts"}) == 2

    # Aftermath: the next batch of the trigger ingests and delivers as usual, and the same
    # batch again (a source that retried it) stores nothing twice.
    next_cp = Checkpoint(trigger="accounts", position={"watermark": "2026-11-28T10:05:00.000Z"})
    after = await ingest("accounts", [account_event(6), account_event(7)], next_cp)
    assert after.new_events == 2
    assert await deliver_all(store, "all") == ["evt_6", "evt_7"]
    again = await ingest("accounts", batch, next_cp)
    assert (again.new_events, again.duplicate_events) == (0, 3)
    saved = await store.checkpoint("accounts")
    assert saved is not None and saved.position == next_cp.position


async def test_an_over_long_id_alone_still_moves_the_checkpoint(store: Store) -> None:
    ingest = Ingest(store, ENDPOINTS, Metrics())
    cp = Checkpoint(trigger="accounts", position={"replay_id": 42})
    nul_id = "\x00" * (ID_LIMIT_BYTES + 1)  # NUL: one byte here, three stored as U+FFFD
    events = [account_event(1, record_id=HUGE_RECORD_ID), account_event(2, record_id=nul_id)]
    result = await ingest("accounts", events, cp)
    assert result.new_events == 0
    saved = await store.checkpoint("accounts")
    assert saved is not None and saved.position == {"replay_id": 42}
    assert len(await store.list_poison("accounts")) == 2
    assert await store.claim_due("all", 10, timedelta(seconds=30)) == []


# --- fuzzing: any record id, through ingest, into PostgreSQL -----------------------------

ANY_CHARACTER = st.characters(codec=None, categories=None)  # NUL and lone surrogates too
RECORD_IDS = st.one_of(
    st.text(ANY_CHARACTER, min_size=1, max_size=40),
    st.text(ANY_CHARACTER, min_size=60, max_size=1500),  # around the limit and far past it
    st.binary(min_size=100, max_size=2000).map(bytes.hex),  # long and incompressible
)


async def ingest_then_next_batch(url: str, record_id: str) -> None:
    """A batch holding the fuzzed record id between two ordinary events, then the next batch:
    nothing raises, the ordinary events and both checkpoints are stored, and the fuzzed one
    is stored or kept as poison, by its length alone."""
    store = PostgresStore(url)
    await store.open()
    trigger = f"t{uuid.uuid4().hex}"  # one database for every example: each its own trigger
    try:
        ingest = Ingest(store, ENDPOINTS, Metrics())
        fuzzed = account_event(2, trigger=trigger, record_id=record_id, record={"Id": record_id})
        batch = [account_event(1, trigger=trigger), fuzzed, account_event(3, trigger=trigger)]
        result = await ingest(trigger, batch, Checkpoint(trigger=trigger, position={"n": 1}))
        fits = id_bytes(record_id) <= ID_LIMIT_BYTES
        assert result.new_events == (3 if fits else 2)
        poison = await store.list_poison(trigger)
        assert len(poison) == (0 if fits else 1)
        if fits:
            found = await store.last_changes(trigger, [record_id])
            assert found[record_id].occurred_at == T0
        following = await ingest(
            trigger, [account_event(4, trigger=trigger)], Checkpoint(trigger, {"n": 2})
        )
        assert following.new_events == 1
        saved = await store.checkpoint(trigger)
        assert saved is not None and saved.position == {"n": 2}
    finally:
        await store.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(record_id=RECORD_IDS)
def test_any_record_id_is_stored_or_poison_and_never_wedges_postgresql(
    postgres_url: str, record_id: str
) -> None:
    asyncio.run(ingest_then_next_batch(postgres_url, record_id))
