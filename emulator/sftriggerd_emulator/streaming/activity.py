"""When each client was subscribed to each channel and last asked for events: what a test needs
to tell whether two subscribers were ever live on one channel at the same time (one subscriber
per trigger across replicas).

A client counts as live on a channel from its subscribe to the start of its last connect (or
its unsubscribe): a process killed mid-poll stops asking, and the time it stopped is the start
of its last request, not when the emulator gives up on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

_KEPT_PER_CHANNEL = 1000


@dataclass
class Span:
    client_id: str
    first: datetime
    last: datetime
    open: bool = True  # false after an unsubscribe or a disconnect


class SubscriberActivity:
    def __init__(self) -> None:
        self._spans: dict[str, list[Span]] = {}

    def subscribed(self, channel: str, client_id: str, now: datetime) -> None:
        spans = self._spans.setdefault(channel, [])
        spans.append(Span(client_id, now, now))
        del spans[:-_KEPT_PER_CHANNEL]

    def asked(self, channels: list[str], client_id: str, now: datetime) -> None:
        for channel in channels:
            span = self._open_span(channel, client_id)
            if span is not None:
                span.last = now

    def ended(self, channels: list[str], client_id: str, now: datetime) -> None:
        for channel in channels:
            span = self._open_span(channel, client_id)
            if span is not None:
                span.last, span.open = now, False

    def _open_span(self, channel: str, client_id: str) -> Span | None:
        for span in reversed(self._spans.get(channel, [])):
            if span.client_id == client_id and span.open:
                return span
        return None

    def report(self) -> dict[str, list[dict[str, str]]]:
        return {
            channel: [
                {"client": s.client_id, "first": s.first.isoformat(), "last": s.last.isoformat()}
                for s in spans
            ]
            for channel, spans in sorted(self._spans.items())
        }
