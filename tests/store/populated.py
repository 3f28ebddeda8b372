"""A store with a bit of everything a move must carry, written the way the daemon writes it:
events through the real `Ingest` with the checkpoints of a polling and a streaming trigger,
poison, claims, and every kind of outcome (delivered, a retry due later, dead), and one
delivery left in flight as a killed process leaves it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sftriggerd.config.settings import EndpointSettings
from sftriggerd.events.model import Event
from sftriggerd.ingest import Ingest
from sftriggerd.metrics import Metrics
from sftriggerd.store.base import Store
from sftriggerd.store.records import AttemptTrace, Checkpoint, Dead, Delivered, PoisonEvent, Retry
from tests.delivery.rig import endpoint

ORDERED = "hook"  # per-record order
UNORDERED = "plain"
LEASE = timedelta(minutes=5)
RETRY_DELAY = timedelta(hours=1)
BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def endpoints(url: str = "http://127.0.0.1:9/hook") -> list[EndpointSettings]:
    return [
        endpoint(url, name=ORDERED, max_in_flight=4),
        endpoint(url, name=UNORDERED, ordering="none"),
    ]


def change(trigger: str, n: int, record: str, kind: str, replay_id: int | None = None) -> Event:
    source = {"kind": "streaming", "replay_id": replay_id} if replay_id else {"kind": "polling"}
    return Event(
        id=f"evt_{trigger}_{n}",
        trigger=trigger,
        object="Account" if trigger == "accounts" else "Contact",
        change=kind,  # type: ignore[arg-type]
        record_id=record,
        occurred_at=BASE + timedelta(seconds=n),
        source=source,
        changed_fields=("Name",),
        record={"Name": f"{record} #{n}"},
    )


@dataclass(frozen=True)
class Populated:
    """Which delivery of the ordered endpoint ended how (by event id)."""

    delivered: str
    retrying: str
    dead: str
    in_flight: str


async def populate(store: Store) -> Populated:
    ingest = Ingest(store, endpoints(), Metrics())
    polled = [change("accounts", n, f"001A{n % 3}", "updated") for n in range(9)]
    watermark = {"watermark": "2026-03-01T12:00:08Z", "id": "001A2"}
    await ingest(
        "accounts",
        polled,
        Checkpoint("accounts", watermark, event_time=BASE + timedelta(seconds=8)),
        poison=[PoisonEvent("accounts", "no Id in the row", '{"Name": "x"}')],
    )
    streamed = [change("contacts", n, f"003C{n % 2}", "created", 100 + n) for n in range(4)]
    await ingest("contacts", streamed, Checkpoint("contacts", {"replay_id": 103}))
    await ingest("contacts", [], Checkpoint("contacts", {"replay_id": 104}), poison=[_poison()])
    # The oldest change of each of three records, claimed together.
    claims = {c.event_id: c for c in await store.claim_due(ORDERED, 3, LEASE)}
    first, second, third = sorted(claims)
    trace = AttemptTrace(started_at=BASE, duration_ms=12, answer="busy")
    await store.record_outcomes(
        [
            (claims[first], Delivered(204, trace)),
            (claims[second], Retry(RETRY_DELAY, 503, "HTTP 503", trace)),
            (claims[third], Dead(410, "HTTP 410: gone")),
        ]
    )
    # The next change of the delivered record, left in flight (its process died).
    [left] = await store.claim_due(ORDERED, 1, LEASE)
    return Populated(delivered=first, retrying=second, dead=third, in_flight=left.event_id)


def _poison() -> PoisonEvent:
    return PoisonEvent("contacts", "not a change event", '{"channel": "/data/X", "data": 1}')
