"""Ingest: routing, bodies and metrics, committed through a real store."""

from datetime import UTC, datetime, timedelta
from typing import Any

from sftriggerd.events.model import Event
from sftriggerd.ingest import Ingest
from sftriggerd.metrics import Metrics
from sftriggerd.store.base import Store
from sftriggerd.store.records import Checkpoint
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
    claims = await store.claim_due("account-creates", 10, timedelta(seconds=5), datetime.now(UTC))
    assert [c.event_id for c in claims] == ["evt_1"]
    assert b'"type":"account.created"' in claims[0].body
