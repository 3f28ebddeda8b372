"""Which endpoints receive an event: a pure function of the event and the configuration."""

from __future__ import annotations

from collections.abc import Sequence

from .config.settings import EndpointSettings
from .events.model import Event


def endpoints_for(event: Event, endpoints: Sequence[EndpointSettings]) -> tuple[str, ...]:
    """Endpoints fed by the event's trigger whose change filter admits the change.

    The change filter narrows record changes; platform and generic events (change `event`)
    have no record change to filter on, so a trigger's endpoint receives them all.
    """
    return tuple(
        endpoint.name
        for endpoint in endpoints
        if (endpoint.triggers is None or event.trigger in endpoint.triggers)
        and (endpoint.events is None or event.change == "event" or event.change in endpoint.events)
    )


def ordered_endpoints(endpoints: Sequence[EndpointSettings]) -> frozenset[str]:
    return frozenset(e.name for e in endpoints if e.ordering == "per_record")


def order_key(trigger: str, record_id: str | None) -> str | None:
    """What ties one record's changes together for per-record order: the trigger and the
    record id (the unit separator cannot occur in either); None without a record id, whose
    deliveries wait for nothing."""
    return f"{trigger}\x1f{record_id}" if record_id else None
