"""Normalisation meets whatever Salesforce (or a peer posing as it) sends: any JSON value, any
field of any type. It returns events or a gap, or raises `MalformedMessage`; nothing else.
The events it returns can always be encoded (or raise the documented `UnencodableEvent`)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sftriggerd.events.model import Event
from sftriggerd.events.normalise import (
    Gap,
    MalformedMessage,
    from_cdc,
    from_generic,
    from_platform_event,
    from_pushtopic,
    replay_id,
)
from sftriggerd.events.payload import UnencodableEvent, encode_body
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

# Text as Python's JSON decoder can produce it: any code point, lone surrogates included.
json_text = st.text(st.characters(exclude_categories=()), max_size=12)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats()  # NaN and infinities too: `json.loads` accepts them
    | json_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(json_text, children, max_size=4)
    ),
    max_leaves=12,
)

Normaliser = Callable[[Any], "list[Event] | Gap"]
NORMALISERS: dict[str, Normaliser] = {
    "cdc": lambda m: from_cdc("t", CDC_CHANNEL, m),
    "platform_event": lambda m: [from_platform_event("t", PE_CHANNEL, m)],
    "pushtopic": lambda m: [from_pushtopic("t", "Invoice__c", TOPIC_CHANNEL, m)],
    "generic": lambda m: [from_generic("t", GENERIC_CHANNEL, m)],
}
VALID: dict[str, Callable[[], dict[str, Any]]] = {
    "cdc": lambda: cdc("UPDATE", ["001A", "001B"], Name="Acme"),
    "platform_event": platform_event,
    "pushtopic": pushtopic,
    "generic": generic,
}


def normalise_checked(kind: str, message: Any) -> None:
    """Normalises and encodes; only the documented errors may come out."""
    try:
        result = NORMALISERS[kind](message)
    except MalformedMessage:
        return
    if isinstance(result, Gap):
        assert result.overflow or result.record_ids
        assert all("*" not in r for r in result.record_ids) or result.overflow
        return
    for event in result:
        assert event.occurred_at.tzinfo is not None
        try:
            body = encode_body(event)
        except UnencodableEvent:
            continue
        decoded = json.loads(body.decode("utf-8"))  # valid UTF-8 and valid JSON
        assert decoded["id"] == event.id


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into a nested message (dict keys and list indexes)."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


def perturbed(message: dict[str, Any], path: tuple[Any, ...], new: Any, delete: bool) -> Any:
    changed = copy.deepcopy(message)
    parent: Any = changed
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return changed


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(sorted(NORMALISERS)), message=json_values)
def test_any_json_value_normalises_or_is_malformed(kind: str, message: Any) -> None:
    normalise_checked(kind, message)
    value = replay_id(message)
    assert value is None or (type(value) is int)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(sorted(VALID)),
    data=st.data(),
    new=json_values,
    delete=st.booleans(),
)
def test_a_valid_message_with_any_field_changed_normalises_or_is_malformed(
    kind: str, data: st.DataObject, new: Any, delete: bool
) -> None:
    message = VALID[kind]()
    path = data.draw(st.sampled_from(paths(message)), label="path")
    changed = perturbed(message, path, new, delete)
    normalise_checked(kind, changed)
    value = replay_id(changed)
    assert value is None or (type(value) is int)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), new=json_values)
def test_header_fields_of_any_type_normalise_or_are_malformed(
    data: st.DataObject, new: Any
) -> None:
    message = cdc("UPDATE", ["001A"])
    header = message["data"]["payload"]["ChangeEventHeader"]
    name = data.draw(st.sampled_from(sorted(header)), label="field")
    assume(new != header[name])
    header[name] = new
    normalise_checked("cdc", message)


HEADER_FIELDS_OF_THE_WRONG_TYPE = [
    ("recordIds", 5),
    ("recordIds", "001A"),
    ("recordIds", {"0": "001A"}),
    ("recordIds", ["001A", 5]),
    ("changeType", 5),
    ("changeType", None),
    ("changeType", ["UPDATE"]),
    ("entityName", 5),
    ("entityName", {"name": "Account"}),
    ("commitTimestamp", "1569407548000"),
    ("commitTimestamp", "yesterday"),
    ("commitTimestamp", True),
    ("commitTimestamp", 1e300),
    ("commitTimestamp", -1e20),
    ("commitTimestamp", float("nan")),
    ("commitTimestamp", float("inf")),
    ("changedFields", 5),
    ("changedFields", "Name"),
    ("changedFields", [["Name"]]),
    ("changedFields", ""),
    ("changedFields", {}),
    ("transactionKey", 5),
    ("transactionKey", ["k"]),
    ("sequenceNumber", "1"),
    ("sequenceNumber", True),
]


@pytest.mark.parametrize(("field", "value"), HEADER_FIELDS_OF_THE_WRONG_TYPE)
def test_a_header_field_of_the_wrong_type_is_a_malformed_message(field: str, value: Any) -> None:
    message = cdc("UPDATE", ["001A"])
    message["data"]["payload"]["ChangeEventHeader"][field] = value
    with pytest.raises(MalformedMessage):
        from_cdc("t", CDC_CHANNEL, message)


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        ("pushtopic", ("data", "event", "createdDate"), "not a time"),
        ("pushtopic", ("data", "event", "createdDate"), 1459269608208),
        ("pushtopic", ("data", "event", "type"), ["created"]),
        ("pushtopic", ("data", "sobject", "Id"), {"x": 1}),
        ("pushtopic", ("data", "sobject", "Id"), 5),
        ("platform_event", ("data", "payload", "CreatedDate"), "2023-13-45"),
        ("platform_event", ("data", "event", "EventUuid"), {"u": 1}),
        ("generic", ("data", "event", "createdDate"), "0001-01-01T00:00:00+01:00"),
        ("generic", ("data", "event", "createdDate"), None),
        ("cdc", ("data", "payload"), "x"),
        ("cdc", ("data",), ["payload"]),
    ],
)
def test_a_field_of_the_wrong_type_is_a_malformed_message(
    kind: str, field: tuple[str, ...], value: Any
) -> None:
    message = perturbed(VALID[kind](), field, value, delete=False)
    with pytest.raises(MalformedMessage):
        NORMALISERS[kind](message)


@pytest.mark.parametrize("message", [[], "text", 5, None, [{"data": {}}]])
def test_a_message_that_is_not_an_object_is_malformed(message: Any) -> None:
    for normalise in NORMALISERS.values():
        with pytest.raises(MalformedMessage):
            normalise(message)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2016-03-29T16:40:08.208Z", "2016-03-29T16:40:08.208000+00:00"),
        ("2016-03-29T18:40:08+02:00", "2016-03-29T16:40:08+00:00"),
        ("2016-03-29T16:40:08", "2016-03-29T16:40:08+00:00"),
    ],
)
def test_event_times_are_aware_and_in_utc(text: str, expected: str) -> None:
    message = perturbed(generic(), ("data", "event", "createdDate"), text, delete=False)
    assert from_generic("t", GENERIC_CHANNEL, message).occurred_at.isoformat() == expected
