"""The Avro schema and record of one stored event, as Salesforce's Pub/Sub API writes them.

A change event's schema is `<Object>ChangeEvent` in namespace `com.sforce.eventbus`: the
ChangeEventHeader record first, then the object's fields in the org's order (compound fields
such as BillingAddress or a person's Name as nested records). A platform event's schema is
the event's name: CreatedDate and CreatedById first, then its own fields. The header's
changedFields, nulledFields and diffFields become bitmaps over those positions
(see `bitmaps`). Pure functions: the org's field types come in as a lookup.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sftriggerd_emulator.pubsub.bitmaps import field_bitmaps
from sftriggerd_emulator.pubsub.fields import Field, compound_field, plain_field
from sftriggerd_emulator.streaming.channels import change_channel_of
from sftriggerd_emulator.streaming.payloads import NEVER_IN_CHANGE_BODY, compound_of

NAMESPACE = "com.sforce.eventbus"
AVRO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
CHANGE_TYPES = (
    "CREATE",
    "UPDATE",
    "DELETE",
    "UNDELETE",
    "GAP_CREATE",
    "GAP_UPDATE",
    "GAP_DELETE",
    "GAP_UNDELETE",
    "GAP_OVERFLOW",
)
_STRING_LIST = {"type": "array", "items": "string"}
# Header fields after changeType: (name, Avro type, default for a value that does not fit).
_HEADER_TAIL: tuple[tuple[str, str, Any], ...] = (
    ("changeOrigin", "string", ""),
    ("transactionKey", "string", ""),
    ("sequenceNumber", "int", 0),
    ("commitTimestamp", "long", 0),
    ("commitNumber", "long", 0),
    ("commitUser", "string", ""),
)
BITMAP_FIELDS = ("nulledFields", "diffFields", "changedFields")

# object name -> [(field name, org type)] in the org's order, or None when unknown.
FieldTypes = Callable[[str], list[tuple[str, str]] | None]


@dataclass(frozen=True)
class EventRecord:
    """An event's schema (a JSON-ready dict) and the record written with it."""

    schema: dict[str, Any]
    record: dict[str, Any]


def change_event_name(entity: str) -> str:
    """`AccountChangeEvent`, `Invoice__ChangeEvent`: the schema's record name."""
    name = change_channel_of(entity).removeprefix("/data/")
    return name if AVRO_NAME.fullmatch(name) else "ChangeEvent"


def change_event_record(entity: str, payload: Mapping[str, Any], types: FieldTypes) -> EventRecord:
    """A change event's schema and record; `payload` is the CometD payload (header + body)."""
    body = {name: value for name, value in payload.items() if name != "ChangeEventHeader"}
    fields = _object_fields(entity, body, types)
    raw_header = payload.get("ChangeEventHeader")
    header = raw_header if isinstance(raw_header, dict) else {}
    header_schema, header_record = _header(header, fields)
    schema_fields = [header_schema, *_schema_fields(fields)]
    record = {"ChangeEventHeader": header_record} | {field.name: field.value for field in fields}
    return EventRecord(_record_schema(change_event_name(entity), schema_fields), record)


def platform_event_record(name: str, payload: Mapping[str, Any], types: FieldTypes) -> EventRecord:
    fields = [
        plain_field("CreatedDate", "datetime", payload.get("CreatedDate")),
        plain_field("CreatedById", "reference", payload.get("CreatedById")),
    ]
    # Required in Salesforce's schema: they stay so when the event carries them as it should.
    if fields[0].value is not None and fields[0].avro_type == "long":
        fields[0] = Field("CreatedDate", "long", "CreatedDate:DateTime", fields[0].value)
    if isinstance(fields[1].value, str):
        fields[1] = Field("CreatedById", "string", "CreatedBy:EntityId", fields[1].value)
    declared = dict(types(name) or [])
    own = [
        key
        for key in payload
        if key not in ("CreatedDate", "CreatedById") and AVRO_NAME.fullmatch(key)
    ]
    names = [key for key in declared if key in own] + [key for key in own if key not in declared]
    for key in names:
        fields.append(plain_field(key, declared.get(key) or _guess(payload[key]), payload[key]))
    record = {field.name: field.value for field in fields}
    record_name = name if AVRO_NAME.fullmatch(name) else "Event__e"
    return EventRecord(_record_schema(record_name, _schema_fields(fields)), record)


def topic_schema(entity: str, kind: str, types: FieldTypes) -> dict[str, Any]:
    """The schema events of one object or platform event are written with now."""
    if kind == "cdc":
        # A header of a real change type, so changeType is the ChangeType enum events carry
        # (a blank header would make it a string: another schema id than every event's).
        header = {"ChangeEventHeader": {"changeType": CHANGE_TYPES[0]}}
        return change_event_record(entity, header, types).schema
    declared = {key: None for key, _ in types(entity) or []}
    return platform_event_record(entity, declared, types).schema


def _guess(value: Any) -> str | None:
    """A platform event field the org never saw: its type from the value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "double"
    return None


def _object_fields(entity: str, body: Mapping[str, Any], types: FieldTypes) -> list[Field]:
    """The body's fields in schema order: the org's fields, then any it does not know."""
    order: list[str] = []
    declared: dict[str, str] = {}
    compounds: dict[str, str] = {}
    for field_name, field_type in types(entity) or []:
        if field_name in NEVER_IN_CHANGE_BODY:
            continue
        compound = compound_of(entity, field_name)
        name = field_name if compound is None else compound[0]
        if compound is not None:
            compounds[name] = "Name" if name == "Name" else "Address"
        if name not in declared:
            order.append(name)
        declared.setdefault(name, field_type)
    # Salesforce field names are always Avro names; a raw message's odd keys cannot travel.
    order += [name for name in body if name not in declared and AVRO_NAME.fullmatch(name)]
    fields = []
    for name in order:
        value = body.get(name)
        if name in compounds:
            fields.append(compound_field(name, compounds[name], value))
        else:
            fields.append(plain_field(name, declared.get(name), value))
    return fields


def _header(header: Mapping[str, Any], fields: list[Field]) -> tuple[dict[str, Any], Any]:
    """The ChangeEventHeader's schema field and record; ill-typed values become defaults."""
    change_type = header.get("changeType")
    if change_type in CHANGE_TYPES:
        change_type_schema: Any = {
            "type": "enum",
            "name": "ChangeType",
            "namespace": NAMESPACE,
            "symbols": list(CHANGE_TYPES),
        }
    else:
        change_type_schema, change_type = "string", str(change_type or "")
    entity = header.get("entityName")
    record: dict[str, Any] = {
        "entityName": entity if isinstance(entity, str) else "",
        "recordIds": _strings(header.get("recordIds")),
        "changeType": change_type,
    }
    schema_fields: list[dict[str, Any]] = [
        {"name": "entityName", "type": "string"},
        {"name": "recordIds", "type": _STRING_LIST},
        {"name": "changeType", "type": change_type_schema},
    ]
    for name, avro_type, default in _HEADER_TAIL:
        record[name] = _header_value(header.get(name), avro_type, default)
        schema_fields.append({"name": name, "type": avro_type})
    for name in BITMAP_FIELDS:
        record[name] = field_bitmaps(_strings(header.get(name)), fields)
        schema_fields.append({"name": name, "type": _STRING_LIST})
    schema = {
        "name": "ChangeEventHeader",
        "type": {"type": "record", "name": "ChangeEventHeader", "fields": schema_fields},
        "doc": "Data:EventHeader",
    }
    return schema, record


def _header_value(value: Any, avro_type: str, default: Any) -> Any:
    """`value` when it fits `avro_type` (a raw message's header may hold anything)."""
    if avro_type == "string":
        return value if isinstance(value, str) else default
    bits = 31 if avro_type == "int" else 63
    if isinstance(value, int) and not isinstance(value, bool) and -(2**bits) <= value < 2**bits:
        return value
    return default


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str)]


def _schema_fields(fields: list[Field]) -> list[dict[str, Any]]:
    """Field schemas; a nested record type is defined once, then named (Avro's rule)."""
    defined: set[str] = set()
    schemas = []
    for field in fields:
        schema = field.schema()
        if isinstance(field.avro_type, dict):
            record_name = str(field.avro_type["name"])
            if record_name in defined:
                schema["type"] = ["null", record_name]
            defined.add(record_name)
        schemas.append(schema)
    return schemas


def _record_schema(name: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": NAMESPACE, "fields": fields}


def schema_json(schema: dict[str, Any]) -> str:
    return json.dumps(schema, separators=(",", ":"))
