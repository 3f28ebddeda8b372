"""Salesforce's CometD message envelope, read into a transport-neutral `Received` item.

A CometD data message is `{"channel", "data": {"event": {"replayId", ...}, "payload" |
"sobject"}}`. Nothing here raises, whatever JSON arrives: a message that cannot be read
becomes an item marked `unreadable`, kept as poison by the stream loop.
"""

from __future__ import annotations

from .streamed import Received

# Salesforce replay ids are positive 64-bit integers; anything else is no position at all.
MAX_REPLAY_ID = 2**63 - 1


def replay_id(message: object) -> int | None:
    """The message's replay id, or None when it has none of integer type (never raises)."""
    data = message.get("data") if isinstance(message, dict) else None
    event = data.get("event") if isinstance(data, dict) else None
    value = event.get("replayId") if isinstance(event, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def resumable_replay_id(message: object) -> int | None:
    """The message's replay id, or None when it has none we could resume from."""
    value = replay_id(message)
    return value if value is not None and 0 <= value <= MAX_REPLAY_ID else None


def read_message(channel: str, message: object, part: str | None = None) -> Received:
    """The item a message of `channel` stands for: PushTopic messages carry their record in
    `data.sobject`, every other kind its fields in `data.payload` (`part` names another)."""
    data = message.get("data") if isinstance(message, dict) else None
    identity = replay_id(message)
    position = resumable_replay_id(message)
    if not isinstance(data, dict):
        return Received(
            channel=channel,
            payload=None,
            header=None,
            position=position,
            identity=identity,
            raw=message,
            content=message.get("data") if isinstance(message, dict) else message,
            unreadable="message has no data object",
        )
    part = part or ("sobject" if channel.startswith("/topic/") else "payload")
    return Received(
        channel=channel,
        payload=data.get(part),
        header=data.get("event"),
        position=position,
        identity=identity,
        raw=message,
        content=data,
        payload_path=("data", part),
    )
