"""Review of issue 15 (second round), what held: a batch whose every event has an id over
`ID_LIMIT_BYTES` (more events than a part holds, NULs and lone surrogates in the ids too) is
stored as poison, one per event, with the checkpoint moved past it in the same commit, on every
engine; nothing is queued, and the next batch is stored as usual. A fenced writer that lost its
lease writes none of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sftriggerd.events.model import Event
from sftriggerd.ingest import ID_LIMIT_BYTES, Ingest
from sftriggerd.metrics import Metrics
from sftriggerd.store.base import Store
from sftriggerd.store.leadership import LeaseLostError
from sftriggerd.store.records import Checkpoint
from tests.unit.test_routing import endpoint

HUGE = ["\x00" * (ID_LIMIT_BYTES + 1), "\udc80" * 86, "é" * 128, "x" * 3000]


def changed(n: int, record_id: str) -> Event:
    return Event(
        id=f"event-{n}",
        trigger="accounts",
        object="Account",
        change="updated",
        record_id=f"{record_id}{n}",
        occurred_at=datetime(2026, 12, 3, tzinfo=UTC),
        source={"kind": "polling"},
        record={"Id": "001", "Name": f"n{n}"},
    )


async def test_review15b_a_batch_of_only_over_long_ids_is_poison_and_moves_on(
    store: Store,
) -> None:
    ingest = Ingest(store, [endpoint("hook")], Metrics(), chunk_events=3)
    batch = [changed(n, HUGE[n % len(HUGE)]) for n in range(10)]
    result = await ingest("accounts", batch, Checkpoint("accounts", {"n": 10}))
    assert (result.new_events, result.deliveries) == (0, 0)
    assert len(await store.list_poison("accounts", limit=100)) == 10
    saved = await store.checkpoint("accounts")
    assert saved is not None and saved.position == {"n": 10}
    assert await store.claim_due("hook", 100, timedelta(seconds=30)) == []
    ok = await ingest("accounts", [changed(11, "001")], Checkpoint("accounts", {"n": 11}))
    assert ok.deliveries == 1

    # Under a lease lost meanwhile: neither the poison nor the checkpoint is written.
    lease = await store.acquire_lease("accounts", "r1", timedelta(minutes=5))
    assert lease is not None and await store.release_lease("accounts", lease.fence)
    assert await store.acquire_lease("accounts", "r2", timedelta(minutes=5)) is not None
    ingest.fence_for = lambda trigger: lease.fence
    with pytest.raises(LeaseLostError):
        await ingest("accounts", batch, Checkpoint("accounts", {"n": 99}))
    assert len(await store.list_poison("accounts", limit=100)) == 10
    saved = await store.checkpoint("accounts")
    assert saved is not None and saved.position == {"n": 11}
