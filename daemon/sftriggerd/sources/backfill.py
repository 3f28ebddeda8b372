"""Polling on behalf of the streaming source: fill a time range the stream cannot replay,
re-read records a gap notice names, and count what a silent stream may have missed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..config.settings import TriggerSettings
from ..events.model import Event
from ..salesforce.soql import identifier, literal
from ..store.records import Checkpoint
from .context import SourceContext
from .watermark import SYSTEM_FIELDS, Watermark, already_seen, classify, polled_event, range_query


class Backfill:
    def __init__(self, trigger: TriggerSettings, context: SourceContext) -> None:
        assert trigger.object is not None
        self.trigger = trigger
        self.object_name = trigger.object
        self._client = context.client
        self._ingest = context.ingest
        self._store = context.store

    async def fill_range(self, start: datetime, end: datetime, position: dict[str, Any]) -> int:
        """Ingests every change stamped in [start, end]; returns how many were new.

        The checkpoint keeps `position` (the stream's), so filling never moves it."""
        query = range_query(self.object_name, self.trigger.fields, self.trigger.where, start, end)
        new = 0
        async for page in self._client.query_pages(query, include_deleted=True):
            events = await self._events(page.records, Watermark(start))
            checkpoint = Checkpoint(trigger=self.trigger.name, position=position)
            new += (await self._ingest(self.trigger.name, events, checkpoint)).new_events
        return new

    async def _events(self, rows: Sequence[dict[str, Any]], since: Watermark) -> list[Event]:
        last = await self._store.last_changes(self.trigger.name, [str(r["Id"]) for r in rows])
        events = []
        for row in rows:
            state = last.get(str(row["Id"]))
            if already_seen(row, state):
                continue
            change = classify(row, since, state.change if state else None)
            if change in self.trigger.events:
                events.append(
                    polled_event(self.trigger.name, self.object_name, row, change, gap_fill=True)
                )
        return events

    async def reread(
        self, object_name: str, record_ids: Sequence[str], since: datetime
    ) -> list[Event]:
        """The named records as they are now, as `updated` events (deleted when gone)."""
        fields = list(dict.fromkeys([*SYSTEM_FIELDS, *self.trigger.fields]))
        events = []
        for record_id in record_ids:
            record = await self._client.get_record(object_name, record_id, fields)
            if record is None:
                continue  # deleted since; its delete event follows on the stream
            event = polled_event(self.trigger.name, object_name, record, "updated", gap_fill=True)
            if event.change in self.trigger.events:
                events.append(event)
        return events

    async def count_since(self, since: datetime) -> int:
        soql = (
            f"SELECT COUNT() FROM {identifier(self.object_name)}"
            f" WHERE SystemModstamp >= {literal(since.replace(microsecond=0))}"
        )
        return await self._client.count(soql)
