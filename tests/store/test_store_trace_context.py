"""An event's trace context (a W3C traceparent), on every store engine: kept from ingest,
handed back with each claim of its deliveries, and never a reason to lose the event."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sftriggerd.store.base import Store
from sftriggerd.store.records import Checkpoint, NewEvent, Retry

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
TRACED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
OTHER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
# What the test takes for a plausible traceparent, written apart from the store's own rule.
PLAUSIBLE = re.compile(r"[\x20-\x7e]{1,512}")


def event(n: int, trace_context: str | None = None, endpoint: str = "hook") -> NewEvent:
    return NewEvent(
        event_id=f"evt_{n}",
        record_id=None,
        occurred_at=T0 + timedelta(seconds=n),
        body=f'{{"n":{n}}}'.encode(),
        endpoints=(endpoint,),
        trace_context=trace_context,
    )


def checkpoint(n: int) -> Checkpoint:
    return Checkpoint(trigger="t", position={"replay_id": n})


async def traces_claimed(store: Store, endpoint: str = "hook") -> dict[str, str | None]:
    return {c.event_id: c.trace_context for c in await store.claim_due(endpoint, 100, LEASE)}


async def test_a_claim_carries_its_events_trace_context_on_every_attempt(store: Store) -> None:
    await store.ingest("t", [event(1, TRACED), event(2)], checkpoint(2))
    claims = await store.claim_due("hook", 10, LEASE)
    assert {c.event_id: c.trace_context for c in claims} == {"evt_1": TRACED, "evt_2": None}
    # A later attempt, and one after the store is closed and opened again (a restart).
    await store.record_outcomes([(c, Retry(timedelta(0), 503, "busy")) for c in claims])
    again = await store.claim_due("hook", 10, LEASE)
    assert {c.event_id: c.trace_context for c in again} == {"evt_1": TRACED, "evt_2": None}
    await store.release(again)
    await store.close()
    await store.open(create=False)
    await store.ingest("t", [event(3, OTHER)], checkpoint(3))
    assert await traces_claimed(store) == {"evt_1": TRACED, "evt_2": None, "evt_3": OTHER}


async def test_a_duplicate_event_keeps_the_first_ones_trace_context(store: Store) -> None:
    result = await store.ingest("t", [event(1, TRACED), event(1, OTHER)], checkpoint(1))
    assert (result.new_events, result.duplicate_events) == (1, 1)
    again = await store.ingest("t", [event(1, OTHER), event(2, None)], checkpoint(2))
    assert (again.new_events, again.duplicate_events) == (1, 1)
    assert (await store.ingest("t", [event(2, OTHER)], checkpoint(3))).duplicate_events == 1
    assert await traces_claimed(store) == {"evt_1": TRACED, "evt_2": None}


async def test_an_implausible_trace_context_is_stored_as_none(store: Store) -> None:
    longest = "0" * 512
    odd = [
        "0" * 513,  # too long
        TRACED + "\n",  # a control character
        TRACED.replace("4bf9", "4bé9"),  # not ASCII
        "00-\x00",  # NUL, which a PostgreSQL text column refuses
        "00-\ud800",  # a lone surrogate, which UTF-8 cannot encode
        "",
    ]
    events = [event(n, value) for n, value in enumerate([longest, *odd], start=1)]
    result = await store.ingest("t", events, checkpoint(1))
    assert result.new_events == len(events)  # none refused
    claimed = await traces_claimed(store)
    assert claimed == {"evt_1": longest, **{f"evt_{n}": None for n in range(2, len(events) + 1)}}


@given(
    value=st.none()
    | st.text(max_size=600)
    | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=500, max_size=520)
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
async def test_any_text_is_stored_as_given_or_as_none(store: Store, value: str | None) -> None:
    # One store for every example: each stores an event of its own on an endpoint of its own.
    n = len(await store.list_deliveries(limit=10_000)) + 1
    endpoint = f"hook{n}"
    await store.ingest("t", [replace(event(n, value), endpoints=(endpoint,))], checkpoint(n))
    [claim] = await store.claim_due(endpoint, 10, LEASE)
    kept = value if value is not None and PLAUSIBLE.fullmatch(value) else None
    assert claim.trace_context == kept
