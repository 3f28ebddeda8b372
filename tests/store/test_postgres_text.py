"""Text from outside (Salesforce messages, receivers' answers) as the PostgreSQL engine keeps
it: a text column refuses NUL, which such text may hold."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sftriggerd.routing import order_key
from sftriggerd.store.postgres import PostgresStore
from sftriggerd.store.records import AttemptTrace, NewEvent, PoisonEvent, Retry

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
# Any code point, lone surrogates included: a JSON string escape can produce one.
TEXT = st.text(st.characters(codec=None, categories=None), max_size=40)
ID = st.text(st.characters(codec=None, categories=None), min_size=1, max_size=40)


def kept(text: str) -> str:
    """NUL and lone surrogates (from JSON escapes) become U+FFFD."""
    return "".join("\ufffd" if c == "\x00" or "\ud800" <= c <= "\udfff" else c for c in text)


async def round_trip(
    url: str, event_id: str, record_id: str, reason: str, message: str, answer: str
) -> None:
    store = PostgresStore(url)
    await store.open()
    trigger = uuid.uuid4().hex  # one database for every example: each its own trigger
    try:
        poison = PoisonEvent(trigger=trigger, reason=reason, message=message)
        body = message.encode("utf-8", "surrogatepass")
        event = NewEvent(
            event_id,
            record_id,
            T0,
            body,
            ("hook",),
            frozenset({"hook"}),
            order_key=order_key(trigger, record_id),
        )
        result = await store.ingest(trigger, [event, event], None, poison=[poison])
        assert (result.new_events, result.duplicate_events) == (1, 1)
        [stored] = await store.list_poison(trigger, limit=1)
        assert (stored.reason, stored.message) == (kept(reason), kept(message))
        assert (await store.last_changes(trigger, [record_id]))[record_id].occurred_at == T0
        claims = await store.claim_due("hook", 100, timedelta(seconds=30))
        [claim] = [c for c in claims if c.trigger == trigger]
        assert (claim.event_id, claim.body) == (kept(event_id), body)
        trace = AttemptTrace(started_at=T0, duration_ms=5, answer=answer)
        assert await store.record_outcome(claim, Retry(timedelta(hours=1), 500, answer, trace))
        detail = await store.get_delivery_detail(claim.delivery_id)
        assert detail is not None
        [attempt] = detail.attempts
        assert (attempt.error, attempt.answer) == (kept(answer), kept(answer))
    finally:
        await store.close()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    event_id=ID,
    record_id=ID,
    reason=ID,
    message=TEXT,
    answer=TEXT,
)
def test_text_from_outside_is_kept_and_nul_is_replaced(
    postgres_url: str, event_id: str, record_id: str, reason: str, message: str, answer: str
) -> None:
    asyncio.run(round_trip(postgres_url, event_id, record_id, reason, message, answer))
