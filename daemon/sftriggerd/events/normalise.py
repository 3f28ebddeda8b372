"""One pure function per Salesforce message kind, turning a streamed message into events.

Every function here takes any JSON value and either returns events (or a `Gap`) or raises
`MalformedMessage`; no other exception escapes, whatever types the fields hold, so the
source can keep the message as a poison event and move on.

Event ids are stable across replays of the same change: CDC uses the transaction key, the
sequence number and the record id; platform events their EventUuid; PushTopic and generic
events the channel and replay id (Salesforce keeps replay ids per channel). A message
without those gets a digest of its content, so two different messages never share an id
and the same message delivered twice still does.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import SftriggerdError
from .model import Change, Event, event_id

_CDC_CHANGES: dict[str, Change] = {
    "CREATE": "created",
    "UPDATE": "updated",
    "DELETE": "deleted",
    "UNDELETE": "undeleted",
}
_PUSHTOPIC_CHANGES: dict[str, Change] = {
    c: c for c in ("created", "updated", "deleted", "undeleted")
}
_WILDCARD = "*"


class MalformedMessage(SftriggerdError, ValueError):
    """A streamed message without the fields its kind must have, or with fields of the wrong
    JSON type. The only error normalisation raises."""


@dataclass(frozen=True)
class Gap:
    """A CDC gap notice: the records (or, for an overflow, the whole object) to re-read.

    `wildcard` marks a notice whose record ids cannot be re-read one by one: a wildcard
    (`001*`, sent after a custom field type change) or no usable record ids at all. Such a
    notice is filled by time range, as `GAP_OVERFLOW` is."""

    object_name: str
    change_type: str
    record_ids: tuple[str, ...]
    commit_time: datetime
    replay_id: int | None
    wildcard: bool = False

    @property
    def overflow(self) -> bool:
        return self.change_type == "GAP_OVERFLOW" or self.wildcard


def _data(message: object) -> dict[str, Any]:
    data = message.get("data") if isinstance(message, dict) else None
    if not isinstance(data, dict):
        raise MalformedMessage("message has no data object")
    return data


def _event_part(data: dict[str, Any]) -> dict[str, Any]:
    event = data.get("event")
    return event if isinstance(event, dict) else {}


def replay_id(message: object) -> int | None:
    """The message's replay id, or None when it has none of integer type (never raises)."""
    data = message.get("data") if isinstance(message, dict) else None
    event = data.get("event") if isinstance(data, dict) else None
    value = event.get("replayId") if isinstance(event, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def content_digest(message: object) -> str:
    """A stable digest of a message's data: what stands for the replay id of a message that
    has none (the same message gives the same digest, different ones differ)."""
    data = message.get("data") if isinstance(message, dict) else message
    try:
        text = json.dumps(data, sort_keys=True, ensure_ascii=True, default=repr)
    except (TypeError, ValueError, RecursionError) as exc:
        raise MalformedMessage(f"message content cannot be digested: {exc}") from None
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _replay_key(message: object) -> int | str:
    """The replay id, or the content digest when there is none: part of an event id."""
    replay = replay_id(message)
    return content_digest(message) if replay is None else replay


def _source(channel: str, message: object) -> dict[str, Any]:
    return {"kind": "streaming", "channel": channel, "replay_id": replay_id(message)}


def _ms_time(value: object) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedMessage("commitTimestamp is not a number")
    try:
        if not math.isfinite(value):
            raise ValueError("not finite")
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise MalformedMessage("commitTimestamp is out of range") from None


def _iso_time(value: object) -> datetime:
    """An ISO 8601 time in UTC; a time without an offset is taken as UTC (as Salesforce
    writes them)."""
    if not isinstance(value, str):
        raise MalformedMessage("event time is missing or not a string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise MalformedMessage(f"event time {value[:64]!r} is not an ISO 8601 time") from None


def _text(header: dict[str, Any], name: str) -> str:
    value = header.get(name)
    if not isinstance(value, str) or not value or not _storable(value):
        raise MalformedMessage(f"ChangeEventHeader.{name} is not a non-empty string")
    return value


def _storable(text: str) -> bool:
    """Whether the text is valid Unicode: JSON can carry a lone surrogate ("\ud800"), which
    no event id, store key or UTF-8 text can be made of."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _optional(header: dict[str, Any], name: str, kind: type) -> Any:
    value = header.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, kind)
        or (isinstance(value, str) and not _storable(value))
    ):
        noun = "an integer" if kind is int else "a string"
        raise MalformedMessage(f"ChangeEventHeader.{name} is not {noun}")
    return value


def _strings(value: object) -> tuple[str, ...] | None:
    """The value as a tuple of non-empty strings, or None when it is not one."""
    if not isinstance(value, list) or not all(
        isinstance(v, str) and v and _storable(v) for v in value
    ):
        return None
    return tuple(value)


def cdc_header(message: object) -> dict[str, Any]:
    payload = _data(message).get("payload")
    header = payload.get("ChangeEventHeader") if isinstance(payload, dict) else None
    if not isinstance(header, dict):
        raise MalformedMessage("CDC message has no ChangeEventHeader")
    return header


def _changed_fields(header: dict[str, Any]) -> tuple[str, ...]:
    value = header.get("changedFields")
    if value is None or value == []:
        return ()
    fields = _strings(value)
    if fields is None:
        raise MalformedMessage("ChangeEventHeader.changedFields is not a list of strings")
    return fields


def _gap(
    header: dict[str, Any], change_type: str, record_ids: tuple[str, ...] | None, message: object
) -> Gap | None:
    """The gap this header announces, or None for an ordinary change of named records.

    A change whose record ids are a wildcard is a gap too: Salesforce sends one (an UPDATE
    without fields, or a GAP_UPDATE) for every record of the object after a field type
    change, and only a re-read by time can find them."""
    unknown = not record_ids or any(_WILDCARD in r for r in record_ids)
    if not change_type.startswith("GAP_") and not (unknown and record_ids):
        return None
    return Gap(
        object_name=_text(header, "entityName"),
        change_type=change_type,
        record_ids=record_ids or (),
        commit_time=_ms_time(header.get("commitTimestamp")),
        replay_id=replay_id(message),
        wildcard=unknown and change_type != "GAP_OVERFLOW",
    )


def from_cdc(trigger: str, channel: str, message: object) -> list[Event] | Gap:
    """One event per record id of a (possibly merged) change event, or the gap it announces.

    Each event's `raw` is the message narrowed to its own record (the header lists only that
    record id), so a merged event for N records costs N small bodies, not N whole messages."""
    header = cdc_header(message)
    change_type = _text(header, "changeType")
    record_ids = _strings(header.get("recordIds"))
    gap = _gap(header, change_type, record_ids, message)
    if gap is not None:
        return gap
    change = _CDC_CHANGES.get(change_type)
    if change is None:
        raise MalformedMessage(
            f"CDC message with changeType {change_type[:64]!r} is not understood"
        )
    if not record_ids:
        raise MalformedMessage("ChangeEventHeader.recordIds is not a non-empty list of strings")
    object_name = _text(header, "entityName")
    committed = _ms_time(header.get("commitTimestamp"))
    key = (_optional(header, "transactionKey", str), _optional(header, "sequenceNumber", int))
    changed = _changed_fields(header) if change == "updated" else ()
    data = _data(message)
    payload: dict[str, Any] = data["payload"]
    fields = {k: v for k, v in payload.items() if k != "ChangeEventHeader"}
    replay_key = _replay_key(message) if key[0] is None else None
    source = _source(channel, message)
    return [
        Event(
            id=event_id("cdc", object_name, *key, record)
            if key[0] is not None
            else event_id("cdc-replay", channel, replay_key, record),
            trigger=trigger,
            object=object_name,
            change=change,
            record_id=record,
            occurred_at=committed,
            source=source,
            changed_fields=changed,
            record={"Id": record, **fields},
            raw=_narrowed(message, data, payload, header, record),
        )
        for record in record_ids
    ]


def _narrowed(
    message: object,
    data: dict[str, Any],
    payload: dict[str, Any],
    header: dict[str, Any],
    record: str,
) -> dict[str, Any]:
    """The message as if it had named only `record` (shallow copies: values are shared)."""
    assert isinstance(message, dict)
    narrowed_header = {**header, "recordIds": [record]}
    narrowed_payload = {**payload, "ChangeEventHeader": narrowed_header}
    return {**message, "data": {**data, "payload": narrowed_payload}}


def from_platform_event(trigger: str, channel: str, message: object) -> Event:
    data = _data(message)
    payload = data.get("payload")
    if not isinstance(payload, dict):
        raise MalformedMessage("platform event has no payload object")
    uuid = _event_part(data).get("EventUuid") or payload.get("EventUuid")
    if uuid is not None and (not isinstance(uuid, str) or not _storable(uuid)):
        raise MalformedMessage("EventUuid is not a string")
    assert isinstance(message, dict)  # _data checked it
    return Event(
        id=event_id("pe", uuid) if uuid else event_id("pe-replay", channel, _replay_key(message)),
        trigger=trigger,
        object=channel.removeprefix("/event/"),
        change="event",
        record_id=None,
        occurred_at=_iso_time(payload.get("CreatedDate")),
        source=_source(channel, message),
        record=payload,
        raw=message,
    )


def from_pushtopic(trigger: str, object_name: str, channel: str, message: object) -> Event:
    data = _data(message)
    event = data.get("event")
    sobject = data.get("sobject")
    if not isinstance(event, dict) or not isinstance(sobject, dict):
        raise MalformedMessage("PushTopic message needs data.event and data.sobject objects")
    record_id = sobject.get("Id")
    if not isinstance(record_id, str) or not record_id or not _storable(record_id):
        raise MalformedMessage("PushTopic data.sobject.Id is not a non-empty string")
    kind = event.get("type")
    change = _PUSHTOPIC_CHANGES.get(kind) if isinstance(kind, str) else None
    if change is None:
        raise MalformedMessage(f"PushTopic event type {str(kind)[:64]!r} is not understood")
    assert isinstance(message, dict)
    return Event(
        id=event_id("topic", channel, _replay_key(message)),
        trigger=trigger,
        object=object_name,
        change=change,
        record_id=record_id,
        occurred_at=_iso_time(event.get("createdDate")),
        source=_source(channel, message),
        record=sobject,
        raw=message,
    )


def from_generic(trigger: str, channel: str, message: object) -> Event:
    data = _data(message)
    event = _event_part(data)
    assert isinstance(message, dict)
    return Event(
        id=event_id("generic", channel, _replay_key(message)),
        trigger=trigger,
        object=channel.removeprefix("/u/"),
        change="event",
        record_id=None,
        occurred_at=_iso_time(event.get("createdDate")),
        source=_source(channel, message),
        record={"payload": data.get("payload")},
        raw=message,
    )
