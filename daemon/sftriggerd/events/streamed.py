"""One streamed event as a transport delivered it, before it is normalised.

The normalisers and the stream loop read only this, never a transport's envelope: the
transport adapter (CometD, Pub/Sub) unwraps its messages into `Received` items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..errors import SftriggerdError

# The streaming transports: the body's `source.transport`, a trigger's `transport` setting.
TransportName = Literal["cometd", "pubsub"]


class MalformedMessage(SftriggerdError, ValueError):
    """A streamed message without the fields its kind must have, or with fields of the wrong
    JSON type. The only error normalisation raises."""


@dataclass(frozen=True)
class Received:
    """One event of a channel, as delivered.

    `position` is where the stream resumes after this event: opaque to everything but its
    transport (a CometD replay id is an int, a Pub/Sub one bytes); None when the event
    carries none that can be resumed from. `identity` is the transport's name for the event
    within its channel as it was sent (part of event ids and of the body's
    `source.replay_id`); None when there is none, and the event is named by a digest of
    `content` instead. `unreadable` says why the item cannot be read at all: it is kept as
    poison, and the stream still moves past its position. `transport` names the transport
    that delivered it; a Pub/Sub item's `identity` is its replay id in base64."""

    channel: str
    payload: object  # the event's own fields (a PushTopic message: its sobject)
    header: object  # the transport's facts about the event (CometD: `data.event`)
    position: int | bytes | None
    identity: int | str | None
    raw: object  # the message as received: kept in `Event.raw` and in poison
    content: object  # what a content digest covers
    payload_path: tuple[str, ...] = ()  # where `payload` sits inside `raw`
    unreadable: str | None = None
    transport: TransportName = "cometd"

    def readable_payload(self) -> dict[str, Any] | None:
        """The payload when it is a JSON object; raises for an unreadable item."""
        if self.unreadable is not None:
            raise MalformedMessage(self.unreadable)
        return self.payload if isinstance(self.payload, dict) else None

    def header_fields(self) -> dict[str, Any]:
        return self.header if isinstance(self.header, dict) else {}

    def raw_with_payload(self, payload: dict[str, Any]) -> object:
        """`raw` as if its payload were `payload` (shallow copies along the path only)."""
        return _replaced(self.raw, self.payload_path, payload)


def _replaced(value: object, path: tuple[str, ...], new: object) -> object:
    if not path:
        return new
    if not isinstance(value, dict):
        return value
    return {**value, path[0]: _replaced(value.get(path[0]), path[1:], new)}
