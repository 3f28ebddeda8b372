"""Pub/Sub payload decoding: bitmaps read as Salesforce documents them, values in the CometD
shape, and any bytes or bitmap either decoded or refused with a MalformedMessage."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from sftriggerd.events.streamed import MalformedMessage
from sftriggerd.salesforce.pubsub.bitmaps import UnreadableBitmap, field_names
from sftriggerd.salesforce.pubsub.decode import (
    SchemaCache,
    UndecodablePayload,
    UnusableSchema,
    decode_payload,
    decoder_for,
)

STRINGS = {"type": "array", "items": "string"}
HEADER = {
    "name": "ChangeEventHeader",
    "type": {
        "type": "record",
        "name": "ChangeEventHeader",
        "fields": [
            {"name": "entityName", "type": "string"},
            {"name": "recordIds", "type": STRINGS},
            {
                "name": "changeType",
                "type": {"type": "enum", "name": "ChangeType", "symbols": ["CREATE", "UPDATE"]},
            },
            {"name": "commitTimestamp", "type": "long"},
            {"name": "nulledFields", "type": STRINGS},
            {"name": "diffFields", "type": STRINGS},
            {"name": "changedFields", "type": STRINGS},
        ],
    },
}
ADDRESS = {
    "type": "record",
    "name": "Address",
    "fields": [
        {"name": part, "type": ["null", "string"], "default": None}
        for part in ("Street", "City", "State")
    ],
}


def nullable(name: str, avro_type: Any, doc: str = "Data:Text") -> dict[str, Any]:
    return {"name": name, "type": ["null", avro_type], "doc": doc, "default": None}


ACCOUNT = {
    "type": "record",
    "name": "AccountChangeEvent",
    "namespace": "com.sforce.eventbus",
    "fields": [
        HEADER,
        nullable("Name", "string"),
        nullable("BillingAddress", ADDRESS, "Data:Address"),
        nullable("ShippingAddress", "Address", "Data:Address"),
        nullable("LastModifiedDate", "long", "Data:DateTime"),
        nullable("CloseDate", "int", "Data:Date"),
        nullable("Phone", "string"),
        nullable("Rating__c", "double", "Data:Double"),
    ],
}
ACCOUNT_JSON = json.dumps(ACCOUNT)
ACCOUNT_FIELDS = decoder_for(ACCOUNT_JSON).schema.fields


def encoded(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    schemaless_writer(buffer, parse_schema(schema), record)
    return buffer.getvalue()


def header(**values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "entityName": "Account",
        "recordIds": ["001xx0000000001AAA"],
        "changeType": "UPDATE",
        "commitTimestamp": 1_764_000_000_123,
        "nulledFields": [],
        "diffFields": [],
        "changedFields": [],
    }
    return base | values


def test_the_documented_bitmap_reads_as_the_fields_at_its_set_bits() -> None:
    # Salesforce's example '0x650004E0': bits 5, 6, 7, 10, 24, 26, 29, 30.
    fields = decoder_for(
        json.dumps(
            {
                "type": "record",
                "name": "E",
                "fields": [nullable(f"F{i}", "string") for i in range(32)],
            }
        )
    ).schema.fields
    names = field_names("changedFields", ["0x650004E0"], fields)
    assert names == [f"F{i}" for i in (5, 6, 7, 10, 24, 26, 29, 30)]


def test_nested_bitmaps_name_compound_fields_as_cometd_does() -> None:
    # Position 2 is BillingAddress, 3 ShippingAddress (defined once, then named).
    names = field_names("changedFields", ["0x42", "2-0x06", "3-0x01"], ACCOUNT_FIELDS)
    assert names == [
        "Name",
        "Phone",
        "BillingAddress.City",
        "BillingAddress.State",
        "ShippingAddress.Street",
    ]
    # Only nested fields nulled: the list holds only the compound's element.
    assert field_names("nulledFields", ["2-0x02"], ACCOUNT_FIELDS) == ["BillingAddress.City"]
    assert field_names("diffFields", [], ACCOUNT_FIELDS) == []


@pytest.mark.parametrize(
    "bitmaps",
    [
        ["0x100"],
        ["1-0x01"],
        ["2-0x08"],
        ["0x"],
        ["x01"],
        ["0x0G"],
        ["2-"],
        "0x01",
        [1],
        ["9" * 7 + "-0x1"],
    ],
)
def test_bitmaps_that_name_no_field_are_refused(bitmaps: Any) -> None:
    with pytest.raises(UnreadableBitmap):
        field_names("changedFields", bitmaps, ACCOUNT_FIELDS)


@given(st.lists(st.one_of(st.text(), st.from_regex(r"\A([0-9]{1,2}-)?0x[0-9A-Fa-f]{1,4}\Z"))))
def test_any_bitmap_list_reads_as_names_or_a_clear_error(bitmaps: list[str]) -> None:
    try:
        names = field_names("changedFields", bitmaps, ACCOUNT_FIELDS)
    except UnreadableBitmap as exc:
        assert "changedFields" in str(exc)
    else:
        known = {f.name for f in ACCOUNT_FIELDS} | {
            f"{f.name}.{p.name}" for f in ACCOUNT_FIELDS for p in f.parts
        }
        assert set(names) <= known


def test_a_change_event_decodes_to_the_cometd_shape() -> None:
    record = {
        "ChangeEventHeader": header(
            nulledFields=["0x40", "2-0x02"], changedFields=["0x52", "2-0x03"]
        ),
        "Name": "Acme",
        "BillingAddress": {"Street": "1 Rue", "City": None, "State": None},
        "ShippingAddress": None,
        "LastModifiedDate": 1_764_000_000_000,
        "CloseDate": 20_446,
        "Phone": None,
        "Rating__c": None,
    }
    payload = decode_payload(ACCOUNT_JSON, encoded(ACCOUNT, record))
    assert payload == {
        "ChangeEventHeader": header(
            nulledFields=["Phone", "BillingAddress.City"],
            changedFields=[
                "Name",
                "LastModifiedDate",
                "Phone",
                "BillingAddress.Street",
                "BillingAddress.City",
            ],
        ),
        "Name": "Acme",
        "BillingAddress": {"Street": "1 Rue", "City": None},
        "LastModifiedDate": "2025-11-24T16:00:00Z",
        "CloseDate": "2025-12-24",
        "Phone": None,
    }


def test_milliseconds_show_only_when_there_are_some_and_platform_events_always_show_them() -> None:
    record = {"ChangeEventHeader": header(), "LastModifiedDate": 1_764_000_000_123}
    assert decode_payload(ACCOUNT_JSON, encoded(ACCOUNT, record))["LastModifiedDate"] == (
        "2025-11-24T16:00:00.123Z"
    )
    event = {
        "type": "record",
        "name": "Order__e",
        "fields": [
            {"name": "CreatedDate", "type": "long", "doc": "CreatedDate:DateTime"},
            nullable("Note__c", "string"),
            nullable("When__c", {"type": "long", "logicalType": "timestamp-millis"}),
            nullable("Day__c", {"type": "int", "logicalType": "date"}),
            nullable("Blob__c", "bytes"),
        ],
    }
    data = {
        "CreatedDate": 1_764_000_000_000,
        "Note__c": None,
        "When__c": 0,
        "Day__c": 1,
        "Blob__c": b"\x00",
    }
    assert decode_payload(json.dumps(event), encoded(event, data)) == {
        "CreatedDate": "2025-11-24T16:00:00.000Z",
        "Note__c": None,
        "When__c": "1970-01-01T00:00:00.000Z",
        "Day__c": "1970-01-02",
        "Blob__c": "AA==",
    }


def test_a_date_out_of_range_is_refused() -> None:
    record = {"ChangeEventHeader": header(), "LastModifiedDate": 2**62}
    with pytest.raises(UndecodablePayload, match="LastModifiedDate"):
        decode_payload(ACCOUNT_JSON, encoded(ACCOUNT, record))


def test_trailing_bytes_and_unusable_schemas_are_refused() -> None:
    payload = encoded(ACCOUNT, {"ChangeEventHeader": header()})
    assert decode_payload(ACCOUNT_JSON, payload)["ChangeEventHeader"] == header()
    with pytest.raises(UndecodablePayload, match="after its Avro record"):
        decode_payload(ACCOUNT_JSON, payload + b"\x00")
    for schema_json in (
        "{",
        "[]",
        '{"type": "record", "name": "E"}',
        '{"type": "record", "name": "E", "fields": [{"name": "x", "type": "nope"}]}',
    ):
        with pytest.raises(UnusableSchema):
            decode_payload(schema_json, b"")


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_a_malformed_message(payload: bytes) -> None:
    try:
        decoded = decode_payload(ACCOUNT_JSON, payload)
    except MalformedMessage as exc:
        assert str(exc)
    else:
        assert set(decoded) <= {f.name for f in ACCOUNT_FIELDS}
        json.dumps(decoded)  # a body can carry it


@given(st.binary(max_size=64), st.binary(max_size=64))
def test_bytes_after_a_valid_prefix_decode_or_raise_a_malformed_message(
    tail: bytes, head: bytes
) -> None:
    payload = encoded(ACCOUNT, {"ChangeEventHeader": header()})
    for candidate in (payload + tail, head + payload, payload[: len(tail)] + tail):
        try:
            decode_payload(ACCOUNT_JSON, candidate)
        except MalformedMessage:
            pass


def test_the_cache_keeps_the_most_recently_used_decoders() -> None:
    cache = SchemaCache(limit=2)
    first = cache.add("a", ACCOUNT_JSON)
    assert cache.get("a") is first and "a" in cache
    cache.add("b", json.dumps({**ACCOUNT, "name": "B"}))
    cache.get("a")
    cache.add("c", json.dumps({**ACCOUNT, "name": "C"}))
    assert "b" not in cache and "a" in cache and len(cache) == 2
    with pytest.raises(UnusableSchema):
        cache.add("d", "not json")
    assert "d" not in cache
