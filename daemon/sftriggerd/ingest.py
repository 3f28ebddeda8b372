"""The one way events enter the store: routed, encoded, committed with the checkpoint, and
announced to the dispatcher after the commit."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from .config.settings import EndpointSettings
from .events.model import Event
from .events.payload import encode_body
from .metrics import Metrics
from .routing import endpoints_for, ordered_endpoints
from .store.base import Store
from .store.records import Checkpoint, IngestResult, NewEvent, PoisonEvent


def _ignore(endpoints: Iterable[str]) -> None:
    return None


class Ingest:
    def __init__(
        self,
        store: Store,
        endpoints: Sequence[EndpointSettings],
        metrics: Metrics,
        notify: Callable[[Iterable[str]], None] = _ignore,
    ) -> None:
        self._store = store
        self._endpoints = tuple(endpoints)
        self._ordered = ordered_endpoints(endpoints)
        self._metrics = metrics
        self.notify = notify

    def prepare(self, event: Event) -> NewEvent:
        targets = endpoints_for(event, self._endpoints)
        return NewEvent(
            event_id=event.id,
            record_id=event.record_id,
            occurred_at=event.occurred_at,
            body=encode_body(event),
            endpoints=targets,
            ordered_endpoints=self._ordered.intersection(targets),
            change=event.change,
        )

    async def __call__(
        self,
        trigger: str,
        events: Sequence[Event],
        checkpoint: Checkpoint | None,
        poison: Sequence[PoisonEvent] = (),
    ) -> IngestResult:
        """Commits the events (and any poison) with the checkpoint; a crash before it commits
        loses nothing, because the source then resumes from the previous checkpoint."""
        prepared = [self.prepare(event) for event in events]
        result = await self._store.ingest(trigger, prepared, checkpoint, poison)
        if poison:
            self._metrics.poison_events.labels(trigger=trigger).inc(len(poison))
        for event in events:
            source = str(event.source.get("kind", "unknown"))
            self._metrics.events_received.labels(trigger=trigger, source=source).inc()
        self._metrics.events_enqueued.labels(trigger=trigger).inc(result.new_events)
        if result.deliveries:
            self.notify({name for item in prepared for name in item.endpoints})
        return result
