"""Tracing the way of each change: the Salesforce message or query page, its ingest, and every
delivery attempt, joined across the store by the trace context each event keeps.

The rest of the daemon only ever speaks to `active()`, which is `Tracing` (does nothing, costs
a method call) unless tracing was configured on (`tracing.setup`); OpenTelemetry is imported
only then, so it stays an optional extra.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..delivery.answers import Result
    from ..store.records import Claim

AttributeValue = str | int | float | bool


class Attempt:
    """One delivery attempt's span as the worker sees it: the headers that carry its trace
    context to the receiver, and where it learns how the attempt went."""

    def headers(self) -> Mapping[str, str]:
        return {}

    def add_headers(self, headers: dict[str, str]) -> None:
        """Puts `headers()` into a request's headers, replacing any of the same name in
        another case (an endpoint's configured `Traceparent`): one context per request."""
        extra = self.headers()
        if not extra:
            return
        names = {name.lower() for name in extra}
        for name in [name for name in headers if name.lower() in names]:
            del headers[name]
        headers.update(extra)

    def answered(self, result: Result, outcome: str) -> None:
        """`outcome`: delivered, retry or dead."""


NO_ATTEMPT = Attempt()


class Tracing:
    """Tracing off: every span is nothing."""

    on = False

    @contextmanager
    def source_span(self, name: str, attributes: Mapping[str, AttributeValue]) -> Iterator[None]:
        """A batch read from Salesforce (a streamed message batch, a query page), around its
        handling up to and including its ingest."""
        yield

    @contextmanager
    def ingest_span(self, trigger: str, events: int) -> Iterator[None]:
        """An ingest, around the store's commit; `traceparent()` inside it is what the
        stored events keep."""
        yield

    def traceparent(self) -> str | None:
        """The current span's W3C trace context (`traceparent`), kept with stored events."""
        return None

    @contextmanager
    def attempt_span(self, claim: Claim, endpoint: str, url: str) -> Iterator[Attempt]:
        """A delivery attempt, a child of the span that stored the event."""
        yield NO_ATTEMPT

    async def close(self) -> None:
        """Sends what is left and stops the exporter."""


def page_attributes(trigger: str, object_name: str, rows: int) -> dict[str, AttributeValue]:
    """A query page's span attributes (polling, back-fill)."""
    return {
        "sftriggerd.trigger": trigger,
        "salesforce.object": object_name,
        "sftriggerd.rows": rows,
    }


_active: Tracing = Tracing()


def active() -> Tracing:
    return _active


def use(tracing: Tracing) -> None:
    """Makes `tracing` the one every part reports to (the daemon's, or a test's)."""
    global _active
    _active = tracing
