"""What the org knows about its objects: field names, inferred types and the describe answer.

Any object name is accepted and fields are created on first use, as the contract promises.
Names are case-insensitive like Salesforce's; the first spelling seen is kept. A field's type
is inferred from the first non-null value written to it and then sticks, so a datetime field
keeps answering in Salesforce's own format whatever ISO shape the client wrote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from sftriggerd_emulator.clock import format_datetime, parse_datetime
from sftriggerd_emulator.errors import ApiError, no_such_column
from sftriggerd_emulator.ids import STANDARD_KEY_PREFIXES, to_id18

SYSTEM_FIELD_TYPES = {
    "Id": "id",
    "IsDeleted": "boolean",
    "CreatedDate": "datetime",
    "CreatedById": "reference",
    "LastModifiedDate": "datetime",
    "LastModifiedById": "reference",
    "SystemModstamp": "datetime",
}
_SYSTEM_LOWER = {name.lower() for name in SYSTEM_FIELD_TYPES}

# Fields a fresh org already has, so polling a standard object before any write works.
STANDARD_FIELDS: dict[str, dict[str, str]] = {
    "Account": {"Name": "string"},
    "Contact": {"FirstName": "string", "LastName": "string", "Email": "email"},
    "Opportunity": {"Name": "string", "StageName": "picklist", "CloseDate": "date"},
    "Lead": {"FirstName": "string", "LastName": "string", "Company": "string"},
    "Case": {"Subject": "string", "Status": "picklist"},
}

NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_DATETIME_VALUE = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?"
)
_DATE_VALUE = re.compile(r"\d{4}-\d{2}-\d{2}")
_STRING_TYPES = {"string", "textarea", "email", "picklist", "id", "reference", "date"}


@dataclass(frozen=True)
class FieldInfo:
    name: str
    type: str


def canonical_object_name(name: str) -> str:
    """The standard spelling of a standard object (`account` -> `Account`), else as given."""
    for standard in STANDARD_KEY_PREFIXES:
        if standard.lower() == name.lower():
            return standard
    return name


def infer_type(field_name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "double"
    text = str(value)
    if field_name.endswith("Id") and to_id18(text) is not None:
        return "reference"
    if _DATETIME_VALUE.fullmatch(text):
        return "datetime"
    if _DATE_VALUE.fullmatch(text):
        return "date"
    return "textarea" if len(text) > 255 else "string"


class ObjectSchema:
    """One object's key prefix and fields, in the order they first appeared."""

    def __init__(self, name: str, key_prefix: str) -> None:
        self.name = name
        self.key_prefix = key_prefix
        self._fields: dict[str, FieldInfo] = {}
        for field_name, field_type in SYSTEM_FIELD_TYPES.items():
            self._add(FieldInfo(field_name, field_type))
        for field_name, field_type in STANDARD_FIELDS.get(name, {}).items():
            self._add(FieldInfo(field_name, field_type))

    def _add(self, info: FieldInfo) -> None:
        self._fields[info.name.lower()] = info

    def field(self, name: str) -> FieldInfo | None:
        return self._fields.get(name.lower())

    def fields(self) -> list[FieldInfo]:
        return list(self._fields.values())

    def field_names(self) -> list[str]:
        return [info.name for info in self._fields.values()]

    def require_field(self, name: str) -> FieldInfo:
        info = self.field(name)
        if info is None:
            raise no_such_column(name, self.name)
        return info

    def accept_write(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Client-written fields in canonical spelling and stored form; learns new fields.

        Raises ApiError for system fields, non-scalar values and type mismatches, like the
        REST API does.
        """
        accepted: dict[str, Any] = {}
        for name, value in raw.items():
            if name == "attributes":
                continue
            if not NAME_PATTERN.fullmatch(name):
                raise no_such_column(name, self.name)
            if name.lower() in _SYSTEM_LOWER:
                raise ApiError(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {name}. Please check the security"
                    " settings of this field and verify that it is read/write for your"
                    " profile or permission set.",
                    (name,),
                )
            info = self.field(name)
            if info is None and value is not None:
                info = FieldInfo(name, infer_type(name, value))
                self._add(info)
            elif info is None:
                info = FieldInfo(name, "string")
                self._add(info)
            accepted[info.name] = _stored_value(info, value)
        return accepted

    def state(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "key_prefix": self.key_prefix,
            "fields": [[info.name, info.type] for info in self._fields.values()],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ObjectSchema:
        schema = cls(str(state["name"]), str(state["key_prefix"]))
        for field_name, field_type in state["fields"]:
            schema._add(FieldInfo(str(field_name), str(field_type)))
        return schema


def _stored_value(info: FieldInfo, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, dict | list):
        raise _cannot_deserialize(info, value)
    if info.type == "datetime":
        try:
            return format_datetime(parse_datetime(str(value)))
        except ValueError:
            raise _cannot_deserialize(info, value) from None
    if info.type == "date":
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise _cannot_deserialize(info, value) from None
    if info.type == "boolean" and not isinstance(value, bool):
        raise _cannot_deserialize(info, value)
    if info.type == "double" and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise _cannot_deserialize(info, value)
    if info.type in _STRING_TYPES and not isinstance(value, str):
        raise _cannot_deserialize(info, value)
    return value


def _cannot_deserialize(info: FieldInfo, value: Any) -> ApiError:
    return ApiError(
        400,
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {info.type} from value {value!r} or request may be"
        f" missing a required field at [field {info.name}]",
        (info.name,),
    )


def describe_object(schema: ObjectSchema, version: str) -> dict[str, Any]:
    """The `sobjects/{Object}/describe` answer, with the fields the org has seen so far."""
    base = f"/services/data/v{version}/sobjects/{schema.name}"
    label = _label(schema.name)
    return {
        "name": schema.name,
        "label": label,
        "labelPlural": label + "s",
        "keyPrefix": schema.key_prefix,
        "custom": schema.name.endswith("__c"),
        "queryable": True,
        "replicateable": True,
        "retrieveable": True,
        "createable": True,
        "updateable": True,
        "deletable": True,
        "undeletable": True,
        "searchable": True,
        "fields": [_describe_field(schema, info) for info in schema.fields()],
        "childRelationships": [],
        "urls": {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"},
    }


def _describe_field(schema: ObjectSchema, info: FieldInfo) -> dict[str, Any]:
    system = info.name in SYSTEM_FIELD_TYPES
    lengths = {"id": 18, "reference": 18, "string": 255, "email": 80, "picklist": 255}
    return {
        "name": info.name,
        "label": f"{_label(schema.name)} ID" if info.name == "Id" else _label(info.name),
        "type": info.type,
        "length": lengths.get(info.type, 131072 if info.type == "textarea" else 0),
        "nillable": not system,
        "createable": not system,
        "updateable": not system,
        "custom": info.name.endswith("__c"),
        "filterable": True,
        "sortable": info.type != "textarea",
        "referenceTo": _reference_to(info) if info.type == "reference" else [],
    }


def _reference_to(info: FieldInfo) -> list[str]:
    if info.name in ("CreatedById", "LastModifiedById", "OwnerId"):
        return ["User"]
    return [info.name.removesuffix("Id")]


def _label(api_name: str) -> str:
    stem = api_name.removesuffix("__c").removesuffix("Id").replace("_", " ")
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", stem).strip() or api_name
    return f"{spaced} ID" if api_name.endswith("Id") and api_name != "Id" else spaced
