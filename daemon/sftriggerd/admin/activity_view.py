"""The status page's last hour: deliveries per minute per endpoint as small inline SVG
charts (`charts`), and the latest finished deliveries as `sftriggerd demo` prints them
(type, record, source, latency, answer).

Both come from the store (`Store.recent_activity`), so they count every replica's
deliveries, and both are rendered here like the rest of the page: the page's refresh swaps
them in with the other sections; no script draws anything.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

from ..store.activity import (
    FinishedDelivery,
    MinuteTally,
    RecentActivity,
    epoch_minute,
    newest,
)
from ..store.base import Store
from .charts import MinuteCount, fill_minutes, minute_bars
from .markup import badge, e, row, table, when

ACTIVITY_WINDOW = timedelta(hours=1)
WINDOW_MINUTES = 60
LATEST_SHOWN = 20


# Where the small fields of a body the daemon wrote end (`events.payload.build_body`: compact
# JSON, `type` and `source` before the record). Inside a JSON string a quote is escaped, so
# this cannot match there: the first match is the top-level key.
_HEAD_END = b',"changed_fields":'


def _head(body: bytes) -> Any:
    """The body's fields before the record, parsed without the record (an event may carry a
    megabyte of it, and the feed renders 20 bodies on the event loop); the whole body when
    it is not of that shape."""
    end = body.find(_HEAD_END)
    if end > 0:
        try:
            return json.loads(body[:end] + b"}")
        except ValueError:
            pass
    return json.loads(body)


def _body_facts(body: bytes) -> tuple[str, str]:
    """The record's type and how the change came (transport or source kind), from the
    stored webhook body; "—" where it does not say."""
    try:
        found: Any = _head(body)
    except ValueError:
        return "—", "—"
    if not isinstance(found, dict):
        return "—", "—"
    source = found.get("source")
    via = None
    if isinstance(source, dict):
        via = source.get("transport") or source.get("kind")
    return str(found.get("type") or "—"), str(via or "—")


def latency_text(milliseconds: int) -> str:
    if milliseconds < 10_000:
        return f"{milliseconds} ms"
    return (
        f"{milliseconds / 1000:.1f} s"
        if milliseconds < 600_000
        else f"{milliseconds // 60_000} min"
    )


def _answer(delivery: FinishedDelivery) -> str:
    code = f"HTTP {delivery.last_status}" if delivery.last_status else "no answer"
    if delivery.status == "delivered":
        return badge(code, "ok")
    return badge("dead", "bad") + f"<small>{e(code)}</small>"


def _latest_row(delivery: FinishedDelivery, now: datetime) -> str:
    kind, via = _body_facts(delivery.body)
    change = f"<small>{e(delivery.change)}</small>" if delivery.change else ""
    return row(
        "data-latest",
        delivery.id,
        [
            ("Finished", when(delivery.finished_at, now)),
            ("Type", f"{e(kind)}{change}"),
            ("Record", f"<code>{e(delivery.record_id or '—')}</code>"),
            ("Source", f"{e(delivery.trigger)}<small>via {e(via)}</small>"),
            ("Endpoint", f'<a href="deliveries/{e(delivery.id)}">{e(delivery.endpoint)}</a>'),
            ("Latency", e(latency_text(delivery.latency_ms))),
            ("Answer", _answer(delivery)),
        ],
    )


def _charts(activity: RecentActivity, endpoints: list[str]) -> str:
    per_endpoint: dict[str, dict[int, MinuteCount]] = {}
    for tally in activity.tallies:
        per_endpoint.setdefault(tally.endpoint, {})[tally.minute] = MinuteCount(
            tally.delivered, tally.dead
        )
    names = [*endpoints, *sorted(set(per_endpoint) - set(endpoints))]
    figures = []
    for name in names:
        minutes = fill_minutes(per_endpoint.get(name, {}), activity.now_minute, WINDOW_MINUTES)
        delivered = sum(minute.delivered for minute in minutes)
        failed = sum(minute.failed for minute in minutes)
        failed_text = f'<span class="bad">{failed} failed</span>' if failed else "0 failed"
        figures.append(
            f'<figure data-chart="{e(name)}"><figcaption><strong>{e(name)}</strong> '
            f"{delivered} delivered, {failed_text}</figcaption>"
            f"{minute_bars(name, minutes)}</figure>"
        )
    if not figures:
        return '<p class="muted">No endpoints are configured.</p>'
    return f'<div class="charts">{"".join(figures)}</div>'


def render_activity(activity: RecentActivity | None, endpoints: list[str], now: datetime) -> str:
    """The two sections, or nothing when the store could not be read (the summary says so)."""
    if activity is None:
        return ""
    rows = [_latest_row(delivery, now) for delivery in activity.latest]
    latest = table(
        ["Finished", "Type", "Record", "Source", "Endpoint", "Latency", "Answer"],
        rows,
        "No delivery finished in the last hour.",
    )
    return (
        f'<section id="activity"><h2>Last hour</h2>{_charts(activity, endpoints)}'
        '<p class="muted">Deliveries finished per minute, oldest at the left, by every'
        ' replica: <span class="key delivered">delivered</span> and'
        ' <span class="key failed">failed (dead)</span>.</p></section>'
        f'<section id="latest"><h2>Latest deliveries</h2>{latest}'
        '<p class="muted">Latency: from the change in Salesforce to the answer that'
        " finished the delivery.</p></section>"
    )


# While the page is watched (a read at least every 50 s), a refresh reads only the last two
# minutes and keeps the older, finished minutes it counted before: a busy hour is millions
# of rows, which the store should not count again every five seconds. Now and then, and
# after a pause, the whole hour is read again.
_RECENT = timedelta(minutes=2)
_RECENT_READS_WITHIN_S = 50.0
_WHOLE_HOUR_EVERY_S = 600.0


class ActivityReader:
    """Reads `RecentActivity` for the page: the whole hour at first, then increments."""

    def __init__(self) -> None:
        self._tallies: dict[tuple[str, int], MinuteTally] = {}
        self._latest: dict[int, FinishedDelivery] = {}
        self._read_at_s: float | None = None
        self._whole_at_s = 0.0
        # One read at a time. A read marks itself "no read yet" while it runs (so a failed
        # one leaves the whole hour to the next); a view arriving meanwhile would see that
        # and count the whole hour again, each of them, and the whole-hour read is the slow
        # one. Waiting views then read after it, only the last two minutes: fresh, and cheap.
        self._one_read = asyncio.Lock()

    async def read(self, store: Store, at_s: float) -> RecentActivity:
        async with self._one_read:
            return await self._read(store, at_s)

    async def _read(self, store: Store, at_s: float) -> RecentActivity:
        since_read = None if self._read_at_s is None else at_s - self._read_at_s
        whole = (
            since_read is None
            or since_read >= _RECENT_READS_WITHIN_S
            or at_s - self._whole_at_s >= _WHOLE_HOUR_EVERY_S
        )
        # Unset first: should the read fail, the next one reads the whole hour again.
        self._read_at_s = None
        found = await store.recent_activity(ACTIVITY_WINDOW if whole else _RECENT, LATEST_SHOWN)
        # Minutes from here on were still open at the last read (under 50 s ago, so at most
        # one minute earlier) and are fully inside this one's two minutes: counted afresh.
        fresh_from = found.now_minute - 1
        if whole:
            self._tallies, self._latest, self._whole_at_s = {}, {}, at_s
        oldest = found.now_minute - WINDOW_MINUTES + 1
        self._tallies = {
            key: tally
            for key, tally in self._tallies.items()
            if oldest <= tally.minute < fresh_from
        }
        self._tallies.update(
            ((tally.endpoint, tally.minute), tally)
            for tally in found.tallies
            if whole or tally.minute >= fresh_from
        )
        # The feed is a log of finishes: one redriven since stays listed with that finish
        # until newer ones push it out; should it finish again, the newer finish replaces it.
        self._latest.update((delivery.id, delivery) for delivery in found.latest)
        kept = newest(
            [d for d in self._latest.values() if epoch_minute(d.finished_at) >= oldest],
            LATEST_SHOWN,
        )
        self._latest = {delivery.id: delivery for delivery in kept}
        self._read_at_s = at_s
        return RecentActivity(
            now_minute=found.now_minute,
            tallies=tuple(self._tallies[key] for key in sorted(self._tallies)),
            latest=kept,
        )
