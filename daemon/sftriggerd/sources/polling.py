"""The polling source: reads a trigger's object with SOQL on a schedule, page by page.

Each page is one `ingest` (its events and the watermark of its last row), so a crash
re-reads at most one page. A look-back re-read catches transactions that committed after the
watermark passed their stamp; ingestion is idempotent on the event id (record Id + stamp), so
re-read rows are not delivered twice. The interval stretches as the org's API usage nears
`salesforce.api_budget`, and no call is made that the budget does not allow.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from .. import tracing
from ..config.settings import TriggerSettings
from ..errors import SftriggerdError
from ..events.model import Event
from ..logs import get_logger
from ..store.records import Checkpoint, PoisonEvent
from .context import SourceContext
from .position import WatermarkPosition, decode, encode, poll_resume
from .status import TriggerStatus
from .watermark import (
    EPOCH,
    MalformedRow,
    Watermark,
    after_query,
    classify,
    initial_watermark,
    lookback_query,
    polled_event,
    record_id_of,
    row_watermark,
    split_rows,
    window_end,
)

log = get_logger(__name__)

# Never poll more often than this, however small the headroom makes the stretch.
_MAX_STRETCH = 20.0


def _last_watermark(rows: Sequence[dict[str, Any]], current: Watermark) -> Watermark:
    """The watermark of the page's last readable row (poison rows are passed over)."""
    for row in reversed(rows):
        try:
            return row_watermark(row)
        except MalformedRow:
            continue
    return current


class PollingSource:
    def __init__(
        self,
        trigger: TriggerSettings,
        context: SourceContext,
        status: TriggerStatus,
        *,
        batch_size: int | None = None,
    ) -> None:
        assert trigger.object is not None, "a polled trigger names its object"
        self.trigger = trigger
        self.object_name = trigger.object
        self.name = f"polling:{trigger.name}"
        self._client = context.client
        self._ingest = context.ingest
        self._store = context.store
        self._metrics = context.metrics
        self.status = status
        self._batch_size = batch_size
        self._clock = context.clock
        self.watermark: Watermark | None = None
        self._floor = EPOCH

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            wait_s = self.trigger.poll_interval.total_seconds()
            try:
                if self._budget_allows():
                    await self.poll_once()
                    wait_s *= self._stretch()
                else:
                    wait_s = await self._throttled(wait_s)
            except SftriggerdError as exc:
                self._failed(exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), wait_s)

    def not_ready_reasons(self) -> list[str]:
        status = self.status
        if status.last_success_at is None:
            return [f"{self.trigger.name}: first polling cycle not done"]
        behind_s = (self._clock() - status.last_success_at).total_seconds()
        limit_s = 3 * self.trigger.poll_interval.total_seconds() * _MAX_STRETCH
        if behind_s > max(limit_s, 60):
            return [f"{self.trigger.name}: last successful poll {behind_s:.0f}s ago"]
        return []

    async def poll_once(self) -> int:
        """One cycle: everything after the watermark, then the look-back. Returns new events."""
        start = await self._load_watermark()
        upper = window_end(self._clock(), self.trigger.poll_delay)
        fields, where = self.trigger.fields, self.trigger.where
        new = 0
        if upper >= start.time:
            query = after_query(self.object_name, fields, where, start, upper)
            new += await self._read(query, start, advance=True)
        reached = self.watermark or start
        # Never look back past where the trigger started: `latest` means nothing older.
        since = max(reached.time - self.trigger.poll_lookback, self._floor)
        query = lookback_query(self.object_name, fields, where, reached, since)
        new += await self._read(query, reached, advance=False)
        self._succeeded(upper)
        return new

    async def _read(self, query: str, read_from: Watermark, *, advance: bool) -> int:
        new = 0
        include_deleted = "deleted" in self.trigger.events or "undeleted" in self.trigger.events
        async for page in self._client.query_pages(
            query, include_deleted=include_deleted, batch_size=self._batch_size
        ):
            rows = len(page.records)
            attributes = tracing.page_attributes(self.trigger.name, self.object_name, rows)
            with tracing.active().source_span(f"poll {self.object_name}", attributes):
                events, poison = await self._events(page.records, read_from)
                current = self.watermark or read_from
                # Only the forward read moves the watermark; look-back rows lie behind it.
                last = _last_watermark(page.records, current) if advance else current
                checkpoint = self._checkpoint(last)
                result = await self._ingest(self.trigger.name, events, checkpoint, poison)
            self.watermark = last
            new += result.new_events
        return new

    async def _events(
        self, rows: Sequence[dict[str, Any]], read_from: Watermark
    ) -> tuple[list[Event], list[PoisonEvent]]:
        good, poison = split_rows(self.trigger.name, rows)
        last_changes = await self._store.last_changes(
            self.trigger.name, [record_id_of(row) for row in good]
        )
        events = []
        for row in good:
            last = last_changes.get(record_id_of(row))
            change = classify(row, read_from, last.change if last else None)
            if change in self.trigger.events:
                events.append(polled_event(self.trigger.name, self.object_name, row, change))
        return events, poison

    def _checkpoint(self, watermark: Watermark) -> Checkpoint:
        position = WatermarkPosition(watermark.time, watermark.record_id, self._floor)
        return Checkpoint(
            trigger=self.trigger.name, position=encode(position), event_time=watermark.time
        )

    async def _load_watermark(self) -> Watermark:
        if self.watermark is None:
            saved = await self._store.checkpoint(self.trigger.name)
            stored = (
                decode(self.trigger.name, saved.position, saved.event_time)
                if saved is not None
                else None
            )
            # From a streaming position: poll from the time the stream reached.
            resumed = poll_resume(stored, self.trigger.poll_lookback)
            if resumed is not None:
                self.watermark = Watermark(resumed.time, resumed.record_id)
                self._floor = resumed.floor
            else:
                start = initial_watermark(self.trigger.start_from, self._clock())
                self.watermark = Watermark(window_end(start.time, timedelta(0)), "")
                self._floor = self.watermark.time
            self.status.positioned(str(self.watermark))
        return self.watermark

    def _budget_allows(self) -> bool:
        return self._client.budget.may_spend(2)

    def _stretch(self) -> float:
        headroom = self._client.budget.headroom_ratio
        return (
            min(_MAX_STRETCH, 1.0 / max(headroom * 2, 1.0 / _MAX_STRETCH))
            if headroom < 0.5
            else 1.0
        )

    async def _throttled(self, interval_s: float) -> float:
        usage = self._client.budget.usage
        log.warning(
            "poll_throttled",
            trigger=self.trigger.name,
            used=usage.used if usage else None,
            limit=usage.limit if usage else None,
            budget=self._client.budget.share,
        )
        self._metrics.poll_throttled.labels(trigger=self.trigger.name).inc()
        # One cheap call refreshes the usage figures, so the poller notices when they drop.
        with contextlib.suppress(SftriggerdError):
            await self._client.limits()
        return interval_s * _MAX_STRETCH / 4

    def _succeeded(self, upper: datetime) -> None:
        status = self.status
        status.polled(str(self.watermark), upper, self._clock())
        lag = status.lag_s(self._clock())
        if lag is not None:
            self._metrics.checkpoint_lag_seconds.labels(trigger=self.trigger.name).set(lag)

    def _failed(self, exc: SftriggerdError) -> None:
        self.status.fault(str(exc), failed=True)
        log.error("poll_failed", trigger=self.trigger.name, error=str(exc))
