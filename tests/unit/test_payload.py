"""The webhook body, byte for byte against a snapshot; any text Salesforce sends encodes."""

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftriggerd.events.model import Event, event_id
from sftriggerd.events.normalise import MalformedMessage
from sftriggerd.events.payload import (
    UnencodableEvent,
    build_body,
    encode_body,
    format_time,
    poison_text,
    storable_text,
)

SNAPSHOTS = Path(__file__).parent / "snapshots"

UPDATED = Event(
    id="evt_0123456789abcdef0123456789abcdef",
    trigger="account-changes",
    object="Account",
    change="updated",
    record_id="001xx000003DGb2AAG",
    occurred_at=datetime(2026, 11, 28, 10, 15, 2, tzinfo=UTC),
    source={
        "kind": "streaming",
        "channel": "/data/AccountChangeEvent",
        "replay_id": 12345,
        "transport": "cometd",
    },
    changed_fields=("Name",),
    record={"Id": "001xx000003DGb2AAG", "Name": "Acme"},
    raw={"schema": "abc", "payload": {"Name": "Acme"}, "event": {"replayId": 12345}},
)

PLATFORM_EVENT = Event(
    id="evt_ffff",
    trigger="order-placed",
    object="Order_Placed__e",
    change="event",
    record_id=None,
    occurred_at=datetime(2026, 11, 28, 10, 15, 2, 517000, tzinfo=UTC),
    source={
        "kind": "streaming",
        "channel": "/event/Order_Placed__e",
        "replay_id": 7,
        "transport": "cometd",
    },
    record={"Amount__c": 12.5, "Name": "Café"},
)


def test_updated_record_body_matches_snapshot() -> None:
    expected = (SNAPSHOTS / "account_updated.json").read_bytes().strip()
    assert encode_body(UPDATED) == expected


def test_platform_event_body_matches_snapshot() -> None:
    expected = (SNAPSHOTS / "platform_event.json").read_bytes().strip()
    assert encode_body(PLATFORM_EVENT) == expected


def test_body_has_every_contract_field_in_order() -> None:
    body = build_body(UPDATED)
    assert list(body) == [
        "id",
        "type",
        "trigger",
        "object",
        "change",
        "record_id",
        "occurred_at",
        "source",
        "changed_fields",
        "record",
        "raw",
    ]
    assert body["type"] == "account.updated"
    assert body["occurred_at"] == "2026-11-28T10:15:02.000Z"
    assert json.loads(encode_body(PLATFORM_EVENT))["type"] == "order_placed__e.event"


def test_changed_fields_is_always_a_list() -> None:
    created = Event(
        id="e",
        trigger="t",
        object="Lead",
        change="created",
        record_id="00Q",
        occurred_at=UPDATED.occurred_at,
        source={"kind": "polling"},
    )
    assert build_body(created)["changed_fields"] == []


def test_times_are_utc_with_milliseconds() -> None:
    from datetime import timedelta, timezone

    paris = timezone(timedelta(hours=1))
    assert format_time(datetime(2026, 1, 1, 1, 0, 0, 123456, tzinfo=paris)) == (
        "2026-01-01T00:00:00.123Z"
    )


def test_event_ids_are_stable_and_distinct() -> None:
    assert event_id("cdc", "txn", 1, "001A") == event_id("cdc", "txn", 1, "001A")
    assert event_id("cdc", "txn", 1, "001A") != event_id("cdc", "txn", 1, "001B")
    assert event_id("x").startswith("evt_") and len(event_id("x")) == 36


# --- issue 13: text UTF-8 cannot carry, values JSON cannot write ------------------------------


def with_record(record: dict[str, Any]) -> Event:
    return dataclasses.replace(UPDATED, record=record, raw={"payload": record})


def test_a_lone_surrogate_is_written_as_its_json_escape() -> None:
    event = with_record({"Name": "half \ud83d of an emoji", "\udc00key": "x"})
    body = encode_body(event)
    assert b"half \\ud83d of an emoji" in body and b'"\\udc00key"' in body
    decoded = json.loads(body.decode("utf-8"))
    assert decoded["record"] == event.record and decoded["raw"] == event.raw


def test_characters_outside_the_bmp_stay_utf8() -> None:
    event = with_record({"Name": "Caf\u00e9 \U0001f600 \u4e2d"})
    body = encode_body(event)
    assert "Café 😀 中".encode() in body and b"\\u" not in body


def test_bodies_without_surrogates_are_unchanged() -> None:
    plain = json.dumps(build_body(UPDATED), separators=(",", ":"), ensure_ascii=False).encode()
    assert encode_body(UPDATED) == plain


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), 10**5000, {1j: "complex key"}, object()],
    ids=["nan", "infinity", "long-int", "bad-key", "object"],
)
def test_a_value_json_cannot_write_raises_unencodable_event(value: object) -> None:
    with pytest.raises(UnencodableEvent) as caught:
        encode_body(with_record({"Amount__c": value}))
    assert isinstance(caught.value, MalformedMessage)
    assert UPDATED.id in str(caught.value)


def test_a_nesting_too_deep_raises_unencodable_event() -> None:
    deep: dict[str, Any] = {}
    for _ in range(5000):
        deep = {"x": deep}
    with pytest.raises(UnencodableEvent):
        encode_body(with_record(deep))


any_text = st.text(st.characters(exclude_categories=()), max_size=20)
json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(record=st.dictionaries(any_text, json_like, max_size=5))
def test_any_record_encodes_to_utf8_json_that_decodes_to_it_or_is_unencodable(
    record: dict[str, Any],
) -> None:
    event = with_record(record)
    try:
        body = encode_body(event)
    except UnencodableEvent:
        return  # NaN or infinity somewhere: JSON has no way to write them
    decoded = json.loads(body.decode("utf-8"))
    # What any JSON reader makes of the record (it joins a high and a low surrogate that
    # stand next to each other: JSON has no way to keep them apart).
    assert decoded["record"] == json.loads(json.dumps(record))


@settings(max_examples=200, deadline=None)
@given(message=json_like, limit=st.integers(min_value=1, max_value=200))
def test_poison_text_is_bounded_and_storable(message: object, limit: int) -> None:
    text = poison_text(message, limit=limit)
    text.encode("utf-8")  # no lone surrogate left
    assert len(text) <= 6 * limit + 40


class _Shown:
    def __repr__(self) -> str:
        return "<shown>"


class _Unshowable:
    def __repr__(self) -> str:
        raise ValueError("no")


def test_poison_text_is_json_with_reprs_inside_and_falls_back_to_repr() -> None:
    assert poison_text({"name": "Zoë", "v": _Shown()}) == '{"name": "Zoë", "v": "<shown>"}'
    looped: list[object] = []
    looped.append(looped)
    assert poison_text(looped) == "[[...]]"  # JSON refuses a cycle; repr does not
    assert poison_text(_Unshowable()) == "<_Unshowable that cannot be shown>"


def test_storable_text_cuts_past_the_limit_and_says_how_much() -> None:
    assert storable_text("abcd", limit=4) == "abcd"
    assert storable_text("abcdef", limit=4) == "abcd… (2 more characters)"
