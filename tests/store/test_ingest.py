"""Ingest: routing, bodies and metrics, committed through a real store."""

import dataclasses
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sftriggerd.errors import StoreError
from sftriggerd.events.model import Event
from sftriggerd.ingest import Ingest
from sftriggerd.metrics import Metrics
from sftriggerd.store.base import Store
from sftriggerd.store.leadership import Fence
from sftriggerd.store.records import Checkpoint, IngestResult, NewEvent, PoisonEvent
from sftriggerd.store.sqlite import SqliteStore
from tests.unit.test_routing import ENDPOINTS


def account_event(n: int, change: Any = "created") -> Event:
    return Event(
        id=f"evt_{n}",
        trigger="accounts",
        object="Account",
        change=change,
        record_id=f"001{n}",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        source={"kind": "polling", "watermark": "x"},
    )


async def test_ingest_routes_encodes_counts_and_notifies(store: Store) -> None:
    metrics = Metrics()
    notified: list[set[str]] = []
    ingest = Ingest(store, ENDPOINTS, metrics, notify=lambda names: notified.append(set(names)))
    cp = Checkpoint(trigger="accounts", position={"watermark": "x"})
    result = await ingest("accounts", [account_event(1), account_event(2, "updated")], cp)
    assert (result.new_events, result.deliveries) == (2, 5)
    again = await ingest("accounts", [account_event(1)], cp)
    assert again.duplicate_events == 1
    assert notified == [{"all", "accounts", "account-creates"}]
    sample = metrics.registry.get_sample_value
    assert (
        sample("sftriggerd_events_received_total", {"trigger": "accounts", "source": "polling"})
        == 3
    )
    assert sample("sftriggerd_events_enqueued_total", {"trigger": "accounts"}) == 2
    claims = await store.claim_due("account-creates", 10, timedelta(seconds=5))
    assert [c.event_id for c in claims] == ["evt_1"]
    assert b'"type":"account.created"' in claims[0].body


# --- issue 13: big batches in bounded parts, events that cannot be encoded ------------------


class CountingStore(SqliteStore):
    """A real SQLite store that remembers each ingest transaction, and can fail the k-th."""

    def __init__(self, path: Path, fail_call: int | None = None) -> None:
        super().__init__(path)
        self.calls: list[tuple[int, int, bool, int]] = []  # events, bytes, checkpoint, poison
        self.fail_call = fail_call

    async def ingest(
        self,
        trigger: str,
        events: Sequence[NewEvent],
        checkpoint: Checkpoint | None,
        poison: Sequence[PoisonEvent] = (),
        fence: Fence | None = None,
    ) -> IngestResult:
        if len(self.calls) + 1 == self.fail_call:
            self.fail_call = None
            raise StoreError("disk full (injected)")
        size = sum(len(e.body) for e in events)
        self.calls.append((len(events), size, checkpoint is not None, len(poison)))
        return await super().ingest(trigger, events, checkpoint, poison, fence)


@pytest.fixture
async def counting(tmp_path: Path) -> AsyncIterator[CountingStore]:
    store = CountingStore(tmp_path / "state.db")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def pending(store: Store, endpoint: str = "all") -> list[str]:
    claims = await store.claim_due(endpoint, 100_000, timedelta(seconds=5))
    return sorted(c.event_id for c in claims)


async def test_a_big_batch_is_stored_in_parts_and_only_the_last_moves_the_checkpoint(
    counting: CountingStore,
) -> None:
    notified: list[set[str]] = []
    ingest = Ingest(counting, ENDPOINTS, Metrics(), notify=lambda n: notified.append(set(n)))
    events = [account_event(n) for n in range(1234)]
    cp = Checkpoint(trigger="accounts", position={"watermark": "x"})
    result = await ingest("accounts", events, cp)
    assert result.new_events == 1234 and result.duplicate_events == 0
    assert [(n, moved) for n, _, moved, _ in counting.calls] == [
        (500, False),
        (500, False),
        (234, True),
    ]
    assert len(notified) == 3  # each part announced as it commits
    assert len(await pending(counting)) == 1234
    saved = await counting.checkpoint("accounts")
    assert saved is not None and saved.position == {"watermark": "x"}


async def test_parts_are_bounded_by_body_bytes_too(counting: CountingStore) -> None:
    ingest = Ingest(counting, ENDPOINTS, Metrics(), chunk_bytes=10_000)
    events = [account_event(n) for n in range(200)]
    await ingest("accounts", events, Checkpoint(trigger="accounts", position={"w": 1}))
    sizes = [size for _, size, _, _ in counting.calls]
    largest_body = max(len(ingest.prepare(e).body) for e in events)
    assert len(sizes) > 3 and all(size < 10_000 + largest_body for size in sizes)
    assert sum(n for n, _, _, _ in counting.calls) == 200


async def test_a_failure_between_parts_moves_nothing_and_the_replay_stores_the_rest(
    tmp_path: Path,
) -> None:
    store = CountingStore(tmp_path / "state.db", fail_call=3)
    await store.open()
    try:
        ingest = Ingest(store, ENDPOINTS, Metrics(), chunk_events=100)
        events = [account_event(n) for n in range(250)]
        first = Checkpoint(trigger="accounts", position={"replay_id": 1})
        await ingest("accounts", [], first)
        cp = Checkpoint(trigger="accounts", position={"replay_id": 2})
        with pytest.raises(StoreError):
            await ingest("accounts", events, cp)
        assert len(await pending(store)) == 100  # the first part is stored...
        saved = await store.checkpoint("accounts")
        assert saved is not None and saved.position == {"replay_id": 1}  # ...but not moved past
        # The source resumes from the old checkpoint and the same message comes again.
        result = await ingest("accounts", events, cp)
        assert (result.new_events, result.duplicate_events) == (150, 100)
        saved = await store.checkpoint("accounts")
        assert saved is not None and saved.position == {"replay_id": 2}
    finally:
        await store.close()
    # A restart right after: everything is there once, and the checkpoint holds.
    reopened = SqliteStore(tmp_path / "state.db")
    await reopened.open()
    try:
        assert len(await pending(reopened, "accounts")) == 250
        saved = await reopened.checkpoint("accounts")
        assert saved is not None and saved.position == {"replay_id": 2}
    finally:
        await reopened.close()


async def test_an_event_that_cannot_be_encoded_is_poison_and_the_batch_goes_on(
    counting: CountingStore,
) -> None:
    metrics = Metrics()
    ingest = Ingest(counting, ENDPOINTS, metrics, chunk_events=2)
    bad = dataclasses.replace(
        account_event(2), record={"Amount": float("nan")}, raw={"data": {"Amount": "\ud800"}}
    )
    given_poison = PoisonEvent(trigger="accounts", reason="no ChangeEventHeader", message="{}")
    cp = Checkpoint(trigger="accounts", position={"replay_id": 9})
    result = await ingest(
        "accounts", [account_event(1), bad, account_event(3), account_event(4)], cp, [given_poison]
    )
    assert result.new_events == 3
    assert await pending(counting) == ["evt_1", "evt_3", "evt_4"]
    # The poison goes with the last part, the one that moves the checkpoint.
    assert [(moved, poison) for _, _, moved, poison in counting.calls] == [
        (False, 0),
        (True, 2),
    ]
    kept = await counting.list_poison("accounts")
    reasons = sorted(p.reason for p in kept)
    assert reasons[0].startswith("event evt_2 cannot be written as JSON: Out of range float")
    assert reasons[1] == "no ChangeEventHeader"
    [unencodable] = [p for p in kept if p.reason.startswith("event evt_2")]
    assert "\\ud800" in unencodable.message
    sample = metrics.registry.get_sample_value
    assert sample("sftriggerd_poison_events_total", {"trigger": "accounts"}) == 2
    saved = await counting.checkpoint("accounts")
    assert saved is not None and saved.position == {"replay_id": 9}


async def test_an_empty_batch_still_moves_the_checkpoint(counting: CountingStore) -> None:
    ingest = Ingest(counting, ENDPOINTS, Metrics())
    await ingest("accounts", [], Checkpoint(trigger="accounts", position={"replay_id": 3}))
    assert counting.calls == [(0, 0, True, 0)]
