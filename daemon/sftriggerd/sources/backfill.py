"""Polling on behalf of the streaming source: fill a time range the stream cannot replay,
re-read records a gap notice names, and count what a silent stream may have missed."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .. import tracing
from ..config.settings import TriggerSettings
from ..events.model import Event
from ..events.normalise import Gap
from ..events.payload import format_time
from ..salesforce.soql import identifier, literal
from ..store.records import PoisonEvent
from .context import SourceContext
from .watermark import (
    Watermark,
    already_seen,
    classify,
    gap_change,
    ids_query,
    polled_event,
    range_query,
    record_id_of,
    split_rows,
)

# A Salesforce record id: 15 characters, or 18 with the case-safe suffix.
_RECORD_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
# SOQL statements have a length limit: name at most this many ids in one `IN (...)`.
_IDS_PER_QUERY = 200


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class Backfill:
    def __init__(self, trigger: TriggerSettings, context: SourceContext) -> None:
        assert trigger.object is not None
        self.trigger = trigger
        self.object_name = trigger.object
        self._client = context.client
        self._ingest = context.ingest
        self._store = context.store
        self.batch_size: int | None = None  # rows per page; None: Salesforce's default

    async def fill_range(self, start: datetime, end: datetime) -> int:
        """Ingests every change stamped in [start, end]; returns how many were new.

        Pages are stored without moving the checkpoint: the caller saves the position the
        fill reached once the whole range is stored, so a failed page loses nothing."""
        query = range_query(self.object_name, self.trigger.fields, self.trigger.where, start, end)
        new = 0
        pages = self._client.query_pages(query, include_deleted=True, batch_size=self.batch_size)
        async for page in pages:
            rows = len(page.records)
            attributes = tracing.page_attributes(self.trigger.name, self.object_name, rows)
            with tracing.active().source_span(f"backfill {self.object_name}", attributes):
                events, poison = await self._events(page.records, Watermark(start))
                new += (await self._ingest(self.trigger.name, events, None, poison)).new_events
        return new

    async def _events(
        self, rows: Sequence[dict[str, Any]], since: Watermark
    ) -> tuple[list[Event], list[PoisonEvent]]:
        good, poison = split_rows(self.trigger.name, rows)
        last = await self._store.last_changes(self.trigger.name, [record_id_of(r) for r in good])
        events = []
        for row in good:
            state = last.get(record_id_of(row))
            if already_seen(row, state):
                continue
            change = classify(row, since, state.change if state else None)
            if change in self.trigger.events:
                events.append(
                    polled_event(self.trigger.name, self.object_name, row, change, gap_fill=True)
                )
        return events, poison

    @staticmethod
    def can_reread(gap: Gap) -> bool:
        """False when a notice names something other than record ids: fill its time range."""
        return bool(gap.record_ids) and all(_RECORD_ID.fullmatch(r) for r in gap.record_ids)

    async def reread(self, gap: Gap) -> list[Event]:
        """The records a gap notice names, as they are now (deleted ones too, by queryAll),
        each as the change the notice reports."""
        change = gap_change(gap.change_type)
        if change not in self.trigger.events:
            return []
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(list(dict.fromkeys(gap.record_ids)), _IDS_PER_QUERY):
            query = ids_query(gap.object_name, self.trigger.fields, self.trigger.where, chunk)
            async for page in self._client.query_pages(query, include_deleted=True):
                found.update((str(row.get("Id")), row) for row in page.records)
        events = []
        for record_id in dict.fromkeys(gap.record_ids):
            row = found.get(record_id)
            if row is None:
                if change != "deleted":
                    # Gone for good (purged), or no longer meets `where`: nothing to report
                    # but a delete, which passes unfiltered as a streamed one does.
                    continue
                row = {"Id": record_id, "SystemModstamp": format_time(gap.commit_time)}
            events.append(polled_event(self.trigger.name, gap.object_name, row, change, True))
        return events

    async def count_since(self, since: datetime) -> int:
        soql = (
            f"SELECT COUNT() FROM {identifier(self.object_name)}"
            f" WHERE SystemModstamp >= {literal(since.replace(microsecond=0))}"
        )
        return await self._client.count(soql)
