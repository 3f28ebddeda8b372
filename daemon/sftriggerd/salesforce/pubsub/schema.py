"""What the decoder needs to know of an event's Avro schema: its fields, in order, and how
each one's values read. Pure functions over the schema JSON `GetSchema` returns.

Salesforce makes every data field a union `["null", T]` and says in the field's `doc` which
Salesforce type it holds (`Data:DateTime`, `CreatedDate:DateTime`, `Data:Date`): a datetime
travels as epoch milliseconds (long), a date as days since the epoch (int), or as epoch
milliseconds when its type is long. Compound fields (an address, a person's name) are nested
records; a record type used twice is defined once and then named (Avro's rule).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from ...events.streamed import MalformedMessage

# How a field's decoded value becomes the value the CometD side carries.
FieldForm = Literal["datetime", "date_days", "date_ms", "compound", "value"]
HEADER = "ChangeEventHeader"


class UnusableSchema(MalformedMessage):
    """A schema that is not a JSON Avro record schema the decoder can follow."""


@dataclass(frozen=True)
class FieldSpec:
    """One field of the event record; `parts` are a compound field's nested fields."""

    name: str
    form: FieldForm
    parts: tuple[FieldSpec, ...] = ()


@dataclass(frozen=True)
class EventSchema:
    """The parsed schema JSON and the record's fields in schema order (bitmap positions)."""

    schema: dict[str, Any]
    fields: tuple[FieldSpec, ...]

    @property
    def is_change_event(self) -> bool:
        """A change event's schema starts with its ChangeEventHeader record."""
        return bool(self.fields) and self.fields[0].name == HEADER and bool(self.fields[0].parts)


def read_schema(schema_json: str) -> EventSchema:
    """The event schema of `schema_json`; raises `UnusableSchema` when it is not a record."""
    try:
        schema = json.loads(schema_json)
    except (ValueError, RecursionError) as exc:
        raise UnusableSchema(f"the event schema is not JSON: {exc}") from None
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise UnusableSchema("the event schema is not an Avro record schema")
    try:
        return EventSchema(schema, _fields(schema, _named_records(schema)))
    except RecursionError:
        raise UnusableSchema("the event schema nests too deeply") from None


def _fields(record: dict[str, Any], records: dict[str, dict[str, Any]]) -> tuple[FieldSpec, ...]:
    fields = record.get("fields")
    if not isinstance(fields, list):
        raise UnusableSchema(f"record {str(record.get('name'))[:64]!r} has no field list")
    specs = []
    for field in fields:
        if not isinstance(field, dict) or not isinstance(field.get("name"), str):
            raise UnusableSchema("a field of the event schema has no name")
        specs.append(_field(field, records))
    return tuple(specs)


def _field(field: dict[str, Any], records: dict[str, dict[str, Any]]) -> FieldSpec:
    name: str = field["name"]
    branch = _value_branch(field.get("type"), records)
    if isinstance(branch, dict) and branch.get("type") == "record":
        return FieldSpec(name, "compound", _fields(branch, records))
    primitive = branch.get("type") if isinstance(branch, dict) else branch
    doc = field.get("doc")
    salesforce_type = doc.rpartition(":")[2] if isinstance(doc, str) else ""
    if salesforce_type == "DateTime" and primitive == "long":
        return FieldSpec(name, "datetime")
    if salesforce_type == "Date" and primitive in ("int", "long"):
        return FieldSpec(name, "date_days" if primitive == "int" else "date_ms")
    return FieldSpec(name, "value")


def _value_branch(avro_type: object, records: dict[str, dict[str, Any]]) -> object:
    """The type a field holds when not null: a union's single non-null branch, named record
    types resolved. A union of several non-null types is left as it is (read as values)."""
    if isinstance(avro_type, list):
        branches = [branch for branch in avro_type if branch != "null"]
        if len(branches) != 1:
            return avro_type
        avro_type = branches[0]
    if isinstance(avro_type, str):
        return records.get(avro_type, avro_type)
    return avro_type


def _named_records(schema: object, namespace: str = "") -> dict[str, dict[str, Any]]:
    """Every record type defined in the schema, by short and by full name."""
    found: dict[str, dict[str, Any]] = {}
    if isinstance(schema, list):
        for item in schema:
            found |= _named_records(item, namespace)
    elif isinstance(schema, dict):
        own_namespace = schema.get("namespace")
        if isinstance(own_namespace, str):
            namespace = own_namespace
        name = schema.get("name")
        if schema.get("type") == "record" and isinstance(name, str):
            found[name] = schema
            found[f"{namespace}.{name}" if namespace and "." not in name else name] = schema
        for value in schema.values():
            if isinstance(value, dict | list):
                found |= _named_records(value, namespace)
    return found
