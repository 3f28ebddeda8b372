"""Avro types of record fields, and the values written for them. Pure functions.

Salesforce's event schemas make every data field a union `["null", T]` with a null default and
say in `doc` what Salesforce type it holds (`Data:DateTime`); datetimes travel as epoch
milliseconds (long), dates as days since the epoch (int), numbers as doubles. The org's
schema gives the declared type; a value that does not fit it (a raw message published through
`/_emulator/publish` may hold anything) gets the type of its own value, so every event
encodes, and a schema of its own tells the client so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from sftriggerd_emulator.clock import epoch_ms, parse_datetime

AvroType = str | dict[str, Any]
_EPOCH = date(1970, 1, 1)
_DOC_NAMES = {
    "datetime": "DateTime",
    "date": "Date",
    "double": "Double",
    "boolean": "Checkbox",
    "reference": "EntityId",
    "id": "EntityId",
    "picklist": "Picklist",
    "email": "Email",
    "textarea": "TextArea",
}
ADDRESS_PARTS = (
    "Street",
    "City",
    "State",
    "PostalCode",
    "Country",
    "StateCode",
    "CountryCode",
    "Latitude",
    "Longitude",
    "GeocodeAccuracy",
)
NAME_PARTS = ("Salutation", "FirstName", "LastName", "MiddleName", "Suffix")
_NUMBER_PARTS = frozenset({"Latitude", "Longitude"})


class DoesNotFit(ValueError):
    """A value that the declared type cannot carry."""


@dataclass(frozen=True)
class Field:
    """One field of a record schema, with the value this event writes into it."""

    name: str
    avro_type: AvroType
    doc: str
    value: Any
    # Compound fields (addresses, names): the names of their nested fields, in schema order.
    parts: tuple[str, ...] = ()

    def schema(self) -> dict[str, Any]:
        if self.doc.startswith(("CreatedDate:", "CreatedBy:")):
            return {"name": self.name, "type": self.avro_type, "doc": self.doc}
        return {
            "name": self.name,
            "type": ["null", self.avro_type],
            "doc": self.doc,
            "default": None,
        }


def _declared_value(declared: str, value: Any) -> tuple[AvroType, Any]:
    """(Avro type, written value) for a value of the org's type `declared`."""
    if declared == "datetime":
        if value is not None and not isinstance(value, str):
            raise DoesNotFit(declared)
        try:
            return "long", None if value is None else epoch_ms(parse_datetime(value))
        except ValueError as exc:
            raise DoesNotFit(declared) from exc
    if declared == "date":
        if value is None:
            return "int", None
        try:
            return "int", (date.fromisoformat(str(value)) - _EPOCH).days
        except ValueError as exc:
            raise DoesNotFit(declared) from exc
    if declared == "double":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise DoesNotFit(declared)
        return "double", None if value is None else float(value)
    if declared == "boolean":
        if value is not None and not isinstance(value, bool):
            raise DoesNotFit(declared)
        return "boolean", value
    if value is not None and not isinstance(value, str):
        raise DoesNotFit(declared)
    return "string", value


def _own_value(value: Any) -> tuple[AvroType, Any]:
    """The type a value that fits no declaration travels as."""
    if isinstance(value, bool):
        return "boolean", value
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return "long", value
    if isinstance(value, float):
        return "double", value
    if isinstance(value, str):
        return "string", value
    return "string", json.dumps(value, sort_keys=True, default=str)


def plain_field(name: str, declared: str | None, value: Any) -> Field:
    """A non-compound field: the declared type when the value fits it, else its own."""
    try:
        avro_type, written = _declared_value(declared or "string", value)
        doc = f"Data:{_DOC_NAMES.get(declared or 'string', 'Text')}"
    except DoesNotFit:
        avro_type, written = _own_value(value)
        doc = "Data:Text"
    return Field(name, avro_type, doc, written)


def compound_field(name: str, kind: str, value: Any) -> Field:
    """An address or a person's name as a nested record; anything else as text."""
    parts = ADDRESS_PARTS if kind == "Address" else NAME_PARTS
    record_name = "Address" if kind == "Address" else "Switchable_PersonName"
    if value is not None and (not isinstance(value, dict) or not set(value) <= set(parts)):
        return plain_field(name, None, value)
    written: dict[str, Any] | None = None if value is None else {}
    nested = []
    for part in parts:
        declared = "double" if part in _NUMBER_PARTS else "string"
        part_value = None if value is None else value.get(part)
        try:
            avro_type, part_written = _declared_value(declared, part_value)
        except DoesNotFit:
            return plain_field(name, None, value)
        nested.append({"name": part, "type": ["null", avro_type], "default": None})
        if written is not None:
            written[part] = part_written
    record = {"type": "record", "name": record_name, "fields": nested}
    return Field(name, record, f"Data:{kind}", written, parts)
