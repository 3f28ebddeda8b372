"""One pure function per Salesforce message kind, turning a streamed message into events.

Event ids are stable across replays of the same change: CDC uses the transaction key, the
sequence number and the record id; platform events their EventUuid; PushTopic and generic
events the channel and replay id (Salesforce keeps replay ids per channel).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .model import Change, Event, event_id

_CDC_CHANGES: dict[str, Change] = {
    "CREATE": "created",
    "UPDATE": "updated",
    "DELETE": "deleted",
    "UNDELETE": "undeleted",
}


class MalformedMessage(ValueError):
    """A streamed message without the fields its kind must have."""


@dataclass(frozen=True)
class Gap:
    """A CDC gap notice: the records (or, for GAP_OVERFLOW, the whole object) to re-read."""

    object_name: str
    change_type: str
    record_ids: tuple[str, ...]
    commit_time: datetime
    replay_id: int | None

    @property
    def overflow(self) -> bool:
        return self.change_type == "GAP_OVERFLOW"


def _data(message: dict[str, Any]) -> dict[str, Any]:
    data = message.get("data")
    if not isinstance(data, dict):
        raise MalformedMessage("message has no data object")
    return data


def _event_part(data: dict[str, Any]) -> dict[str, Any]:
    event = data.get("event")
    return event if isinstance(event, dict) else {}


def replay_id(message: dict[str, Any]) -> int | None:
    event = _data(message).get("event")
    value = event.get("replayId") if isinstance(event, dict) else None
    return value if isinstance(value, int) else None


def _source(channel: str, message: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "streaming", "channel": channel, "replay_id": replay_id(message)}


def _ms_time(value: Any) -> datetime:
    if not isinstance(value, int | float):
        raise MalformedMessage("commitTimestamp is not a number")
    return datetime.fromtimestamp(value / 1000, UTC)


def _iso_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise MalformedMessage("event time is missing")
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def cdc_header(message: dict[str, Any]) -> dict[str, Any]:
    payload = _data(message).get("payload")
    header = payload.get("ChangeEventHeader") if isinstance(payload, dict) else None
    if not isinstance(header, dict):
        raise MalformedMessage("CDC message has no ChangeEventHeader")
    return header


def from_cdc(trigger: str, channel: str, message: dict[str, Any]) -> list[Event] | Gap:
    """One event per record id of a (possibly merged) change event, or the gap it announces."""
    header = cdc_header(message)
    change_type = str(header.get("changeType", ""))
    object_name = str(header.get("entityName", ""))
    record_ids = [str(r) for r in header.get("recordIds") or []]
    committed = _ms_time(header.get("commitTimestamp"))
    if change_type.startswith("GAP_"):
        return Gap(object_name, change_type, tuple(record_ids), committed, replay_id(message))
    change = _CDC_CHANGES.get(change_type)
    if change is None or not object_name or not record_ids:
        raise MalformedMessage(f"CDC message with changeType {change_type!r} is not understood")
    fields = {k: v for k, v in _data(message)["payload"].items() if k != "ChangeEventHeader"}
    changed = (
        tuple(str(f) for f in header.get("changedFields") or []) if change == "updated" else ()
    )
    key = (header.get("transactionKey"), header.get("sequenceNumber"))
    return [
        Event(
            id=event_id("cdc", object_name, *key, record)
            if key[0] is not None
            else event_id("cdc-replay", channel, replay_id(message), record),
            trigger=trigger,
            object=object_name,
            change=change,
            record_id=record,
            occurred_at=committed,
            source=_source(channel, message),
            changed_fields=changed,
            record={"Id": record, **fields},
            raw=message,
        )
        for record in record_ids
    ]


def from_platform_event(trigger: str, channel: str, message: dict[str, Any]) -> Event:
    data = _data(message)
    payload = data.get("payload")
    if not isinstance(payload, dict):
        raise MalformedMessage("platform event has no payload")
    event = _event_part(data)
    uuid = event.get("EventUuid") or payload.get("EventUuid")
    return Event(
        id=event_id("pe", uuid) if uuid else event_id("pe-replay", channel, replay_id(message)),
        trigger=trigger,
        object=channel.removeprefix("/event/"),
        change="event",
        record_id=None,
        occurred_at=_iso_time(payload.get("CreatedDate")),
        source=_source(channel, message),
        record=payload,
        raw=message,
    )


def from_pushtopic(trigger: str, object_name: str, channel: str, message: dict[str, Any]) -> Event:
    data = _data(message)
    event = data.get("event")
    sobject = data.get("sobject")
    if not isinstance(event, dict) or not isinstance(sobject, dict) or "Id" not in sobject:
        raise MalformedMessage("PushTopic message needs data.event and data.sobject.Id")
    change = str(event.get("type", ""))
    if change not in ("created", "updated", "deleted", "undeleted"):
        raise MalformedMessage(f"PushTopic event type {change!r} is not understood")
    return Event(
        id=event_id("topic", channel, replay_id(message)),
        trigger=trigger,
        object=object_name,
        change=change,  # type: ignore[arg-type]  # checked against the four names above
        record_id=str(sobject["Id"]),
        occurred_at=_iso_time(event.get("createdDate")),
        source=_source(channel, message),
        record=sobject,
        raw=message,
    )


def from_generic(trigger: str, channel: str, message: dict[str, Any]) -> Event:
    data = _data(message)
    event = _event_part(data)
    return Event(
        id=event_id("generic", channel, replay_id(message)),
        trigger=trigger,
        object=channel.removeprefix("/u/"),
        change="event",
        record_id=None,
        occurred_at=_iso_time(event.get("createdDate")),
        source=_source(channel, message),
        record={"payload": data.get("payload")},
        raw=message,
    )
