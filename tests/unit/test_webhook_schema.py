"""docs/webhook.schema.json holds for every body the real normalisers and the real payload
encoder make, whatever values the message carries (the daemon-level test in
tests/integration/test_webhook_bodies.py covers the sources end to end)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftriggerd.events.model import Event
from sftriggerd.events.normalise import (
    MalformedMessage,
    from_cdc,
    from_generic,
    from_platform_event,
    from_pushtopic,
)
from sftriggerd.events.payload import UnencodableEvent, encode_body
from sftriggerd.sources.watermark import polled_event
from tests.salesforce_messages import (
    CDC_CHANNEL,
    GENERIC_CHANNEL,
    PE_CHANNEL,
    TOPIC_CHANNEL,
    cdc,
    generic,
    platform_event,
    pushtopic,
)
from tests.webhook_schema import validator

CHECK = validator()
FIELD_NAMES = st.from_regex(r"[A-Z][A-Za-z0-9_]{0,20}", fullmatch=True).filter(
    lambda name: name not in ("Id", "ChangeEventHeader", "CreatedDate")
)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
FIELDS = st.dictionaries(FIELD_NAMES, VALUES, max_size=5)
REPLAY = st.none() | st.integers(min_value=1, max_value=2**53)


def assert_valid(events: list[Event]) -> None:
    for event in events:
        try:
            body = json.loads(encode_body(event))
        except UnencodableEvent:
            continue  # kept as poison by ingest, never sent
        errors = [error.message for error in CHECK.iter_errors(body)]
        assert not errors, (errors, body)


@settings(max_examples=60, deadline=None)
@given(
    change_type=st.sampled_from(["CREATE", "UPDATE", "DELETE", "UNDELETE"]),
    records=st.integers(min_value=1, max_value=4),
    replay=REPLAY,
    fields=FIELDS,
)
def test_change_events_give_valid_bodies(
    change_type: str, records: int, replay: int | None, fields: dict[str, Any]
) -> None:
    ids = [f"001D000000KnaX{n:04d}" for n in range(records)]
    result = from_cdc("accounts", CDC_CHANNEL, cdc(change_type, ids, replay, **fields))
    assert isinstance(result, list) and len(result) == records
    assert_valid(result)


@settings(max_examples=40, deadline=None)
@given(replay=REPLAY, fields=FIELDS, payload=VALUES)
def test_platform_pushtopic_and_generic_events_give_valid_bodies(
    replay: int | None, fields: dict[str, Any], payload: Any
) -> None:
    events = [
        from_platform_event("orders", PE_CHANNEL, platform_event(replay, **fields)),
        from_pushtopic("invoices", "Invoice__c", TOPIC_CHANNEL, pushtopic(replay)),
        from_generic("notes", GENERIC_CHANNEL, generic(replay, payload)),
    ]
    assert_valid(events)


@settings(max_examples=40, deadline=None)
@given(
    change=st.sampled_from(["created", "updated", "deleted", "undeleted"]),
    gap_fill=st.booleans(),
    fields=FIELDS,
)
def test_polled_rows_give_valid_bodies(change: Any, gap_fill: bool, fields: dict[str, Any]) -> None:
    row = {
        "attributes": {"type": "Account"},
        **fields,
        "Id": "001D000000KnaXjIAJ",
        "CreatedDate": "2026-11-20T08:00:00.000+0000",
        "SystemModstamp": "2026-11-28T10:15:02.000+0000",
        "IsDeleted": change == "deleted",
    }
    assert_valid([polled_event("accounts", "Account", row, change, gap_fill=gap_fill)])


def test_a_lone_surrogate_still_gives_a_valid_body() -> None:
    message = cdc("UPDATE", ["001D000000KnaXjIAJ"], Name="cut emoji \ud83d")
    [event] = from_cdc("accounts", CDC_CHANNEL, message)
    assert_valid([event])
    assert json.loads(encode_body(event))["record"]["Name"] == "cut emoji \ud83d"


def test_a_message_the_normalisers_refuse_sends_no_body() -> None:
    """Malformed messages become poison, never a body the schema would have to allow."""
    with pytest.raises(MalformedMessage):
        from_platform_event("orders", PE_CHANNEL, {"data": {"payload": {"CreatedDate": 5}}})
