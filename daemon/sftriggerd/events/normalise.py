"""One pure function per Salesforce event kind, turning a streamed item into events.

Every normaliser takes a `Received` item (a payload and its position, whatever transport
brought it) and either returns events (or a `Gap`) or raises `MalformedMessage`; no other
exception escapes, whatever types the fields hold, so the source can keep the item as a
poison event and move on. The `from_*` functions at the end take a CometD message and read
its envelope first (events/cometd_envelope.py).

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

from .cometd_envelope import read_message, replay_id
from .model import Change, Event, event_id
from .streamed import MalformedMessage, Received

__all__ = [
    "Gap",
    "MalformedMessage",
    "cdc_changes",
    "cdc_header",
    "content_digest",
    "from_cdc",
    "from_generic",
    "from_platform_event",
    "from_pushtopic",
    "generic_event",
    "platform_event",
    "pushtopic_change",
    "replay_id",
]

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


def content_digest(content: object) -> str:
    """A stable digest of an event's content: what stands for the replay id of an event that
    has none (the same content gives the same digest, different ones differ)."""
    try:
        text = json.dumps(content, sort_keys=True, ensure_ascii=True, default=repr)
    except (TypeError, ValueError, RecursionError) as exc:
        raise MalformedMessage(f"message content cannot be digested: {exc}") from None
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _identity_key(item: Received) -> int | str:
    """The event's identity, or the content digest when there is none: part of an event id."""
    return content_digest(item.content) if item.identity is None else item.identity


def _source(item: Received) -> dict[str, Any]:
    return {
        "kind": "streaming",
        "channel": item.channel,
        "replay_id": item.identity,
        "transport": item.transport,
    }


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


def cdc_header(item: Received) -> dict[str, Any]:
    payload = item.readable_payload()
    header = payload.get("ChangeEventHeader") if payload is not None else None
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
    header: dict[str, Any], change_type: str, record_ids: tuple[str, ...] | None, item: Received
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
        replay_id=item.identity if isinstance(item.identity, int) else None,
        wildcard=unknown and change_type != "GAP_OVERFLOW",
    )


def cdc_changes(trigger: str, item: Received) -> list[Event] | Gap:
    """One event per record id of a (possibly merged) change event, or the gap it announces.

    Each event's `raw` is the message narrowed to its own record (the header lists only that
    record id), so a merged event for N records costs N small bodies, not N whole messages."""
    header = cdc_header(item)
    change_type = _text(header, "changeType")
    record_ids = _strings(header.get("recordIds"))
    gap = _gap(header, change_type, record_ids, item)
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
    payload = item.readable_payload()
    assert payload is not None  # cdc_header read its header
    fields = {k: v for k, v in payload.items() if k != "ChangeEventHeader"}
    replay_key = _identity_key(item) if key[0] is None else None
    source = _source(item)
    return [
        Event(
            id=event_id("cdc", object_name, *key, record)
            if key[0] is not None
            else event_id("cdc-replay", item.channel, replay_key, record),
            trigger=trigger,
            object=object_name,
            change=change,
            record_id=record,
            occurred_at=committed,
            source=source,
            changed_fields=changed,
            record={"Id": record, **fields},
            raw=_narrowed(item, payload, header, record),
        )
        for record in record_ids
    ]


def _narrowed(
    item: Received, payload: dict[str, Any], header: dict[str, Any], record: str
) -> dict[str, Any]:
    """The message as if it had named only `record` (shallow copies: values are shared)."""
    narrowed_header = {**header, "recordIds": [record]}
    raw = item.raw_with_payload({**payload, "ChangeEventHeader": narrowed_header})
    assert isinstance(raw, dict)  # a readable item came as an object
    return raw


def platform_event(trigger: str, item: Received) -> Event:
    payload = item.readable_payload()
    if payload is None:
        raise MalformedMessage("platform event has no payload object")
    uuid = item.header_fields().get("EventUuid") or payload.get("EventUuid")
    if uuid is not None and (not isinstance(uuid, str) or not _storable(uuid)):
        raise MalformedMessage("EventUuid is not a string")
    return Event(
        id=event_id("pe", uuid)
        if uuid
        else event_id("pe-replay", item.channel, _identity_key(item)),
        trigger=trigger,
        object=item.channel.removeprefix("/event/"),
        change="event",
        record_id=None,
        occurred_at=_iso_time(payload.get("CreatedDate")),
        source=_source(item),
        record=payload,
        raw=_raw(item),
    )


def pushtopic_change(trigger: str, object_name: str, item: Received) -> Event:
    sobject = item.readable_payload()
    event = item.header
    if not isinstance(event, dict) or sobject is None:
        raise MalformedMessage("PushTopic message needs data.event and data.sobject objects")
    record_id = sobject.get("Id")
    if not isinstance(record_id, str) or not record_id or not _storable(record_id):
        raise MalformedMessage("PushTopic data.sobject.Id is not a non-empty string")
    kind = event.get("type")
    change = _PUSHTOPIC_CHANGES.get(kind) if isinstance(kind, str) else None
    if change is None:
        raise MalformedMessage(f"PushTopic event type {str(kind)[:64]!r} is not understood")
    return Event(
        id=event_id("topic", item.channel, _identity_key(item)),
        trigger=trigger,
        object=object_name,
        change=change,
        record_id=record_id,
        occurred_at=_iso_time(event.get("createdDate")),
        source=_source(item),
        record=sobject,
        raw=_raw(item),
    )


def generic_event(trigger: str, item: Received) -> Event:
    item.readable_payload()  # raises for an unreadable item
    return Event(
        id=event_id("generic", item.channel, _identity_key(item)),
        trigger=trigger,
        object=item.channel.removeprefix("/u/"),
        change="event",
        record_id=None,
        occurred_at=_iso_time(item.header_fields().get("createdDate")),
        source=_source(item),
        record={"payload": item.payload},
        raw=_raw(item),
    )


def _raw(item: Received) -> dict[str, Any]:
    assert isinstance(item.raw, dict)  # a readable item came as an object
    return item.raw


# -- CometD messages: the envelope read first ----------------------------------------------


def from_cdc(trigger: str, channel: str, message: object) -> list[Event] | Gap:
    return cdc_changes(trigger, read_message(channel, message))


def from_platform_event(trigger: str, channel: str, message: object) -> Event:
    return platform_event(trigger, read_message(channel, message))


def from_pushtopic(trigger: str, object_name: str, channel: str, message: object) -> Event:
    return pushtopic_change(trigger, object_name, read_message(channel, message, "sobject"))


def from_generic(trigger: str, channel: str, message: object) -> Event:
    return generic_event(trigger, read_message(channel, message))
