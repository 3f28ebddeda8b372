"""The streaming source's one handling path for a batch of received items, whatever the
transport: normalise, ignore rules and `where`, enrich, gap fill, then one ingest.

A mixin of `StreamingSource` (sources/streaming.py), which owns the fields declared here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from .. import tracing
from ..config.settings import TriggerSettings
from ..events.model import Event
from ..events.normalise import (
    Gap,
    MalformedMessage,
    cdc_changes,
    cdc_header,
    generic_event,
    platform_event,
    pushtopic_change,
)
from ..ingest import Ingest
from ..logs import get_logger
from ..metrics import Metrics
from ..salesforce.answers import SalesforceApiError
from ..salesforce.client import SalesforceClient
from ..salesforce.soql import SoqlValueError
from ..store.records import PoisonEvent
from .backfill import Backfill
from .position import RESUME_OVERLAP, ReplayId
from .status import TriggerStatus
from .stream_filter import StreamFilter
from .stream_positions import StreamPositions
from .stream_reader import poison_event
from .transport import Received

log = get_logger(__name__)


class StreamHandling:
    trigger: TriggerSettings
    channel: str
    status: TriggerStatus
    backfill: Backfill | None
    positions: StreamPositions
    _client: SalesforceClient
    _ingest: Ingest
    _metrics: Metrics
    _clock: Callable[[], datetime]
    _filter: StreamFilter
    _last_event_at: datetime
    # Without a stored position, events older than this are not ours (start_from).
    _not_before: datetime | None

    async def _handle(self, items: list[Received]) -> None:
        """One ingest for the batch, at the position of its last item with one (none: the
        events are stored and the position stays). An item that cannot be normalised is
        kept as poison in the same transaction, so the stream moves past it."""
        attributes: dict[str, tracing.AttributeValue] = {
            "messaging.system": "salesforce",
            "messaging.destination.name": self.channel,
            "messaging.batch.message_count": len(items),
            "sftriggerd.trigger": self.trigger.name,
        }
        with tracing.active().source_span(f"receive {self.channel}", attributes):
            await self._handle_traced(items)

    async def _handle_traced(self, items: list[Received]) -> None:
        events: list[Event] = []
        poison: list[PoisonEvent] = []
        last_position: ReplayId | None = None
        for item in items:
            try:
                events.extend(await self._normalise(item))
            except (MalformedMessage, SoqlValueError) as exc:
                # SoqlValueError: a name in the message (object, record id) that cannot go
                # into a query or path; replaying the message would meet it again forever.
                poison.append(self._poison(item, exc))
            except SalesforceApiError as exc:
                if exc.status != 400:
                    raise  # limits, permissions that may change: the batch is tried again
                # A permanent refusal of what the message asks to read (INVALID_TYPE for an
                # object the user cannot query): the same on every replay.
                poison.append(self._poison(item, exc))
            last_position = item.position if item.position is not None else last_position
        if not items:
            return
        if self._not_before is not None:
            events = [e for e in events if e.occurred_at >= self._not_before]
        newest = max((e.occurred_at for e in events), default=None)
        # No position in the whole batch: its events are stored, the position stays.
        checkpoint = (
            None if last_position is None else self.positions.checkpoint(last_position, newest)
        )
        if events or poison or checkpoint is not None:
            await self._ingest(self.trigger.name, events, checkpoint, poison)
        self._last_event_at = self._clock()
        self.status.advanced(None if checkpoint is None else _shown(last_position), self._clock())

    def _poison(self, item: Received, exc: Exception) -> PoisonEvent:
        kept = poison_event(self.trigger.name, item.raw, str(exc))
        self._count_fault("poison")
        log.error(
            "stream_message_poison",
            trigger=self.trigger.name,
            error=kept.reason,
            replay_id=item.position if isinstance(item.position, int) else None,
        )
        return kept

    async def _normalise(self, item: Received) -> list[Event]:
        kind = self.trigger.channel_kind
        name = self.trigger.name
        if kind == "platform_event":
            return await self._filter.keep([platform_event(name, item)])
        if kind == "generic":
            return [generic_event(name, item)]
        if kind == "pushtopic":
            assert self.trigger.object is not None
            event = pushtopic_change(name, self.trigger.object, item)
            return await self._filter.keep([event] if event.change in self.trigger.events else [])
        result = cdc_changes(name, item)
        if isinstance(result, Gap):
            return await self._fill_gap(result)
        if self._ignored(item):
            return []
        wanted = [e for e in result if e.change in self.trigger.events]
        # Filtered before `enrich`, which would otherwise read records the filter drops.
        wanted = await self._filter.keep(wanted)
        return await self._enrich(wanted) if self.trigger.enrich else wanted

    def _ignored(self, item: Received) -> bool:
        header = cdc_header(item)
        origin = str(header.get("changeOrigin", ""))
        return str(header.get("commitUser", "")) in self.trigger.ignore_users or any(
            marker in origin for marker in self.trigger.ignore_origins
        )

    async def _enrich(self, events: list[Event]) -> list[Event]:
        enriched = []
        for event in events:
            if event.change == "updated" and event.object and event.record_id:
                fields = list(self.trigger.fields) or None
                record = await self._client.get_record(event.object, event.record_id, fields)
                if record is not None:
                    merged: dict[str, Any] = {k: v for k, v in record.items() if k != "attributes"}
                    event = Event(**{**event.__dict__, "record": merged})
            enriched.append(event)
        return enriched

    async def _fill_gap(self, gap: Gap) -> list[Event]:
        self._count_fault("gap_overflow" if gap.overflow else "gap")
        log.warning(
            "stream_gap_notice",
            trigger=self.trigger.name,
            change_type=gap.change_type,
            records=len(gap.record_ids),
        )
        if self.backfill is None:
            return []
        if gap.overflow or not self.backfill.can_reread(gap):  # saved with this batch's
            # position, once the whole fill is stored
            # Never later than now: a notice stamped in the future would fill nothing.
            since = min(gap.commit_time, self._clock()) - RESUME_OVERLAP
            await self.positions.fill(self.backfill, since, save=False)
            return []
        return await self.backfill.reread(gap)

    async def _verify_if_silent(self) -> None:
        threshold = self.trigger.verify_after
        if threshold is None or self.backfill is None:
            return
        if self._clock() - self._last_event_at < threshold:
            return
        since = self._last_event_at
        self._last_event_at = self._clock()
        missed = await self.backfill.count_since(since)
        log.info("stream_verified", trigger=self.trigger.name, missed=missed)
        if missed:
            self._count_fault("silence_missed")
            await self.positions.fill(self.backfill, since - RESUME_OVERLAP, save=False)

    def _count_fault(self, kind: str) -> None:
        self._metrics.stream_faults.labels(trigger=self.trigger.name, kind=kind).inc()


def _shown(position: ReplayId | None) -> str:
    """A position for people (the status page): an opaque one in hex."""
    return f"replay_id {position.hex() if isinstance(position, bytes) else position}"
