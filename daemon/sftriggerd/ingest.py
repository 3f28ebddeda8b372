"""The one way events enter the store: routed, encoded, committed with the checkpoint, and
announced to the dispatcher after the commit.

A large batch (a merged CDC event for thousands of records) is encoded and stored in parts
of at most `CHUNK_EVENTS` events and about `CHUNK_BYTES` of bodies, so memory stays bounded
whatever the batch size. Every part but the last is stored without a checkpoint; the last
carries the checkpoint and the poison. A crash between parts moves nothing: the source
resumes from the previous checkpoint, and the parts already stored come back as duplicates.

An id longer than `ID_LIMIT_BYTES` is refused here, for every engine alike: the record id and
the event id are index keys (PostgreSQL refuses a btree entry over about 2700 bytes), and an
id a store cannot take would fail the batch on every retry, stopping the trigger for good.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from . import tracing
from .config.settings import EndpointSettings
from .events.model import Event
from .events.payload import UnencodableEvent, encode_body, poison_text, storable_text
from .metrics import Metrics
from .routing import endpoints_for, order_key, ordered_endpoints
from .store.base import Store
from .store.leadership import Fence
from .store.records import Checkpoint, IngestResult, NewEvent, PoisonEvent

CHUNK_EVENTS = 500
CHUNK_BYTES = 4 * 1024 * 1024
# The longest record id or event id stored, in UTF-8 bytes (a lone surrogate counts the three
# bytes of the U+FFFD it is stored as). Salesforce Ids are 15 or 18 characters, the ids the
# daemon makes (`events.model.event_id`) 36, and an external id field holds at most 255
# characters; with 100-character names (the settings' cap) the largest index entry, the
# per-record order key beside its endpoint, stays under 1.2 KB even when every byte of the id
# is a NUL stored as U+FFFD: far from PostgreSQL's limit.
ID_LIMIT_BYTES = 255


def _ignore(endpoints: Iterable[str]) -> None:
    return None


def _unfenced(trigger: str) -> Fence | None:
    return None


@dataclass(frozen=True)
class Chunk:
    """One store transaction's worth of a batch: the encoded events, and the events that
    could not be encoded (kept as poison with the batch's last chunk)."""

    events: list[NewEvent]
    poison: list[PoisonEvent]


class Ingest:
    def __init__(
        self,
        store: Store,
        endpoints: Sequence[EndpointSettings],
        metrics: Metrics,
        notify: Callable[[Iterable[str]], None] = _ignore,
        *,
        fence_for: Callable[[str], Fence | None] = _unfenced,
        chunk_events: int = CHUNK_EVENTS,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self._store = store
        self._endpoints = tuple(endpoints)
        self._ordered = ordered_endpoints(endpoints)
        self._metrics = metrics
        self.notify = notify
        # The lease a trigger's writes are checked against (`leadership`); read per part,
        # so a part stored after the lease was lost is refused.
        self.fence_for = fence_for
        self._chunk_events = max(1, chunk_events)
        self._chunk_bytes = max(1, chunk_bytes)

    def prepare(self, event: Event) -> NewEvent:
        """The event routed and encoded; raises `UnencodableEvent` when it cannot be (a
        value JSON cannot write, or an id over `ID_LIMIT_BYTES`)."""
        check_ids(event)
        targets = endpoints_for(event, self._endpoints)
        return NewEvent(
            event_id=event.id,
            record_id=event.record_id,
            occurred_at=event.occurred_at,
            body=encode_body(event),
            endpoints=targets,
            ordered_endpoints=self._ordered.intersection(targets),
            change=event.change,
            order_key=order_key(event.trigger, event.record_id),
            # Inside the ingest span: the attempts, however much later, join its trace.
            trace_context=tracing.active().traceparent(),
        )

    def chunks(self, trigger: str, events: Iterable[Event]) -> Iterator[Chunk]:
        """The events encoded part by part (lazily: one part's bodies in memory at a time)."""
        prepared: list[NewEvent] = []
        poison: list[PoisonEvent] = []
        size = 0
        for event in events:
            try:
                item = self.prepare(event)
            except UnencodableEvent as exc:
                poison.append(unencodable_poison(trigger, event, exc))
                continue
            prepared.append(item)
            size += len(item.body)
            if len(prepared) >= self._chunk_events or size >= self._chunk_bytes:
                yield Chunk(prepared, [])
                prepared, size = [], 0
        yield Chunk(prepared, poison)

    async def __call__(
        self,
        trigger: str,
        events: Sequence[Event],
        checkpoint: Checkpoint | None,
        poison: Sequence[PoisonEvent] = (),
    ) -> IngestResult:
        """Commits the events (and any poison) with the checkpoint; a crash before the last
        part commits loses nothing, because the source then resumes from the previous
        checkpoint. An event that cannot be encoded is stored as poison instead."""
        with tracing.active().ingest_span(trigger, len(events)):
            return await self._ingest(trigger, events, checkpoint, poison)

    async def _ingest(
        self,
        trigger: str,
        events: Sequence[Event],
        checkpoint: Checkpoint | None,
        poison: Sequence[PoisonEvent],
    ) -> IngestResult:
        new = duplicates = deliveries = 0
        pending: Chunk | None = None
        for chunk in self.chunks(trigger, events):
            # One part behind, so the last one (with the poison) carries the checkpoint.
            if pending is not None:
                result = await self._store_chunk(trigger, pending, None, ())
                new, duplicates = new + result.new_events, duplicates + result.duplicate_events
                deliveries += result.deliveries
            pending = chunk
        assert pending is not None, "chunks always yields a last part"
        all_poison = [*poison, *pending.poison]
        result = await self._store_chunk(trigger, pending, checkpoint, all_poison)
        if all_poison:
            self._metrics.poison_events.labels(trigger=trigger).inc(len(all_poison))
        received = Counter(str(event.source.get("kind", "unknown")) for event in events)
        for source, count in received.items():
            self._metrics.events_received.labels(trigger=trigger, source=source).inc(count)
        return IngestResult(
            new_events=new + result.new_events,
            duplicate_events=duplicates + result.duplicate_events,
            deliveries=deliveries + result.deliveries,
        )

    async def _store_chunk(
        self,
        trigger: str,
        chunk: Chunk,
        checkpoint: Checkpoint | None,
        poison: Sequence[PoisonEvent],
    ) -> IngestResult:
        fence = self.fence_for(trigger)
        result = await self._store.ingest(trigger, chunk.events, checkpoint, poison, fence)
        self._metrics.events_enqueued.labels(trigger=trigger).inc(result.new_events)
        if result.deliveries:
            # Each part is announced as it commits, so delivery starts before the last.
            self.notify({name for item in chunk.events for name in item.endpoints})
        return result


class OversizedId(UnencodableEvent):
    """An event whose record id or event id is longer than any store index can hold."""


def id_bytes(value: str) -> int:
    """The UTF-8 length of an id as a store keeps it (a lone surrogate: three bytes)."""
    return len(value.encode("utf-8", "surrogatepass"))


def check_ids(event: Event) -> None:
    """Raises `OversizedId` when the event's record id or event id is over the limit."""
    for kind, value in (("event id", event.id), ("record id", event.record_id)):
        if value is not None and id_bytes(value) > ID_LIMIT_BYTES:
            # repr: NUL and lone surrogates shown as escapes, which any store can keep
            raise OversizedId(
                f"{kind} {value[:32]!r}... is {id_bytes(value)} bytes long;"
                f" ids longer than {ID_LIMIT_BYTES} bytes are not stored"
            )


def unencodable_poison(trigger: str, event: Event, exc: UnencodableEvent) -> PoisonEvent:
    """The poison event kept for an event whose body cannot be written."""
    return PoisonEvent(
        trigger=trigger,
        reason=storable_text(str(exc), limit=1000),
        message=poison_text(event.raw or event.record),
    )
