"""The `data` of streamed messages, in Salesforce's CometD JSON shapes. Pure functions.

Each builder leaves `event.replayId` at 0 in its place; the stream fills in the real id when
it stores the event. Key order follows real traffic, which matters only to people reading it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sftriggerd_emulator.context import RecordChange

_SF_DATETIME = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.(\d{3})\+0000")
# Fields every record has that a change event's body never carries (both sides read this).
NEVER_IN_CHANGE_BODY = frozenset({"Id", "IsDeleted", "SystemModstamp"})
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
NAME_PARTS = ("Salutation", "FirstName", "MiddleName", "LastName", "Suffix")
_ADDRESS_PREFIXES: dict[str, tuple[str, ...]] = {
    "Account": ("Billing", "Shipping"),
    "Contact": ("Mailing", "Other"),
    "Lead": ("",),
}
_PERSON_NAMED = frozenset({"Contact", "Lead"})


def iso_ms(moment: datetime) -> str:
    """`2016-03-29T16:40:08.208Z`, the form of `createdDate` and PE `CreatedDate`."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def schema_id(name: str) -> str:
    """A stable 22-character schema id per entity, shaped like Salesforce's."""
    digest = hashlib.sha256(f"schema:{name}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:22]


def cdc_value(value: Any) -> Any:
    """Datetimes in change events read `2019-09-25T10:32:28Z`, not REST's `.000+0000`."""
    if isinstance(value, str):
        match = _SF_DATETIME.fullmatch(value)
        if match:
            seconds, millis = match.groups()
            return f"{seconds}Z" if millis == "000" else f"{seconds}.{millis}Z"
    return value


def compound_of(object_name: str, field_name: str) -> tuple[str, str] | None:
    """(`BillingAddress`, `City`) for `BillingCity` on Account; None for plain fields."""
    if object_name in _PERSON_NAMED and field_name in NAME_PARTS:
        return "Name", field_name
    for prefix in _ADDRESS_PREFIXES.get(object_name, ()):
        for part in ADDRESS_PARTS:
            if field_name == prefix + part:
                return f"{prefix}Address", part
    return None


def field_path(object_name: str, field_name: str) -> str:
    """How changedFields/nulledFields name a field: `BillingAddress.City` for compounds."""
    compound = compound_of(object_name, field_name)
    return field_name if compound is None else f"{compound[0]}.{compound[1]}"


def cdc_body(object_name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Body fields of a change event, compound fields nested (`BillingAddress: {City}`)."""
    body: dict[str, Any] = {}
    for name, value in fields.items():
        if name in NEVER_IN_CHANGE_BODY:
            continue
        compound = compound_of(object_name, name)
        if compound is None:
            body[name] = cdc_value(value)
        else:
            body.setdefault(compound[0], {})[compound[1]] = cdc_value(value)
    return body


@dataclass(frozen=True)
class ChangeHeader:
    """The ChangeEventHeader fields that do not come from the record change itself."""

    sequence_number: int
    commit_number: int


def change_event(
    object_name: str,
    change_type: str,
    record_ids: Iterable[str],
    body: Mapping[str, Any],
    change: RecordChange | None,
    header: ChangeHeader,
    *,
    commit_time: datetime,
    commit_user: str,
) -> dict[str, Any]:
    """A CDC event's `data`; `change` is None for gap and overflow events (header only)."""
    payload: dict[str, Any] = {
        "ChangeEventHeader": {
            "entityName": object_name,
            "recordIds": list(record_ids),
            "changeType": change_type,
            "changeOrigin": "" if change is None else change.change_origin,
            "transactionKey": "" if change is None else change.transaction_key,
            "sequenceNumber": header.sequence_number,
            "commitTimestamp": epoch_ms(commit_time),
            "commitNumber": header.commit_number,
            "commitUser": commit_user,
            "nulledFields": [] if change is None else _paths(object_name, change.nulled_fields),
            "diffFields": [],
            "changedFields": [] if change is None else _paths(object_name, change.changed_fields),
        },
        **body,
    }
    return {"schema": schema_id(object_name), "payload": payload, "event": {"replayId": 0}}


def _paths(object_name: str, names: Iterable[str]) -> list[str]:
    return [field_path(object_name, name) for name in names]


def change_bodies(change: RecordChange) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """(record ids, body) per event one record change becomes.

    Salesforce merges identical changes to several records of one transaction into one event
    with several recordIds; records whose bodies differ (a bulk insert of different names)
    get one event each. UPDATE and DELETE bodies are already shared by construction.
    """
    if change.change_type == "DELETE":
        return [(change.record_ids, {})]
    if change.change_type == "UPDATE" or len(change.records) != len(change.record_ids):
        return [(change.record_ids, cdc_body(change.object_name, change.fields))]
    groups: dict[str, tuple[list[str], dict[str, Any]]] = {}
    for record_id, record in zip(change.record_ids, change.records, strict=True):
        non_null = {name: value for name, value in record.items() if value is not None}
        body = cdc_body(change.object_name, non_null)
        key = repr(sorted(body.items()))
        groups.setdefault(key, ([], body))[0].append(record_id)
    return [(tuple(ids), body) for ids, body in groups.values()]


def platform_event(
    event_name: str,
    payload: Mapping[str, Any],
    *,
    created: datetime,
    created_by: str,
    event_uuid: str,
) -> dict[str, Any]:
    fields = {"CreatedDate": iso_ms(created), "CreatedById": created_by, **payload}
    return {
        "schema": schema_id(event_name),
        "payload": fields,
        "event": {"EventUuid": event_uuid, "replayId": 0},
    }


def pushtopic_event(
    event_type: str, sobject: Mapping[str, Any], created: datetime
) -> dict[str, Any]:
    return {
        "event": {"createdDate": iso_ms(created), "replayId": 0, "type": event_type},
        "sobject": dict(sobject),
    }


def generic_event(payload: str, created: datetime) -> dict[str, Any]:
    return {"event": {"createdDate": iso_ms(created), "replayId": 0}, "payload": payload}
