"""Where a trigger's source resumes, typed: one encode/decode for the stored checkpoint and the
hand-over rule between the streaming and the polling source. Pure functions, no I/O.

A stored position always lets a source resume without loss:

- a replay position is (channel, replay id, time reached). The replay id is the last event
  stored from the stream (None when there is none, or it left retention); the time reached
  says every change stamped before it is stored (from the newest streamed event, or the end
  of a completed back-fill). Without a usable replay id the stream resumes from that time:
  it back-fills from it by polling, then subscribes for new events.
- a watermark position is the poller's (SystemModstamp, Id) and the floor it never looks back
  past. The streaming source takes over from it by back-filling from the watermark.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import SftriggerdError
from ..salesforce.soql import parse_datetime

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ReplayId = int | bytes


class PositionError(SftriggerdError):
    """A stored position cannot be read; names the trigger, so an operator can reset it."""

    def __init__(self, trigger: str, problem: str) -> None:
        self.trigger = trigger
        super().__init__(
            f"trigger {trigger!r}: stored position is not readable ({problem}); reset its"
            " checkpoint to resume"
        )


@dataclass(frozen=True)
class ReplayPosition:
    channel: str
    replay_id: ReplayId | None
    reached: datetime | None = None

    def __str__(self) -> str:
        shown = self.replay_id.hex() if isinstance(self.replay_id, bytes) else self.replay_id
        reached = f" reached {_shown(self.reached)}" if self.reached else ""
        return f"replay_id {shown}{reached}"


@dataclass(frozen=True)
class WatermarkPosition:
    time: datetime
    record_id: str = ""
    floor: datetime = EPOCH

    def __str__(self) -> str:
        return f"{_shown(self.time)} {self.record_id}".strip()


Position = ReplayPosition | WatermarkPosition


def format_time(value: datetime) -> str:
    """ISO 8601 in UTC with microseconds: exact, and padded for every year (unlike %Y)."""
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _shown(value: datetime) -> str:
    """For people: milliseconds, as Salesforce shows times."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(position: Position) -> dict[str, Any]:
    """The JSON-ready value kept in the checkpoint (keys read by older versions kept)."""
    if isinstance(position, WatermarkPosition):
        return {
            "watermark": format_time(position.time),
            "id": position.record_id,
            "floor": format_time(position.floor),
        }
    replay: Any = position.replay_id
    if isinstance(replay, bytes):
        replay = {"base64": base64.b64encode(replay).decode("ascii")}
    encoded: dict[str, Any] = {"replay_id": replay, "channel": position.channel}
    if position.reached is not None:
        encoded["reached"] = format_time(position.reached)
    return encoded


def decode(
    trigger: str, stored: Any, event_time: datetime | None = None, channel: str = ""
) -> Position:
    """The position in a stored checkpoint, in every format stored so far.

    `event_time` (the checkpoint's newest change) stands in for the time reached of replay
    positions stored before that was kept. Raises `PositionError` and nothing else."""
    if not isinstance(stored, Mapping):
        raise PositionError(trigger, f"expected an object, got {type(stored).__name__}")
    if "watermark" in stored:
        return WatermarkPosition(
            _time(trigger, stored, "watermark"),
            _text(trigger, stored, "id", ""),
            _time(trigger, stored, "floor") if "floor" in stored else EPOCH,
        )
    if "replay_id" not in stored:
        raise PositionError(trigger, "neither a replay id nor a watermark")
    reached = _time(trigger, stored, "reached") if stored.get("reached") is not None else None
    if reached is None and event_time is not None:
        reached = _aware(trigger, event_time)
    return ReplayPosition(
        _text(trigger, stored, "channel", channel) or channel,
        _replay_id(trigger, stored["replay_id"]),
        reached,
    )


def _replay_id(trigger: str, value: Any) -> ReplayId | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("base64"), str):
        try:
            return base64.b64decode(value["base64"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise PositionError(trigger, f"replay id is not base64: {exc}") from exc
    raise PositionError(trigger, f"replay id {value!r:.80} is neither a number nor bytes")


def _text(trigger: str, stored: Mapping[str, Any], key: str, default: str) -> str:
    value = stored.get(key, default)
    if not isinstance(value, str):
        raise PositionError(trigger, f"{key} is not text")
    return value


def _time(trigger: str, stored: Mapping[str, Any], key: str) -> datetime:
    value = stored.get(key)
    if not isinstance(value, str):
        raise PositionError(trigger, f"{key} is not a time")
    try:
        parsed = parse_datetime(value)
    except (ValueError, OverflowError) as exc:
        raise PositionError(trigger, f"{key} {value!r:.80} is not a time") from exc
    return _aware(trigger, parsed)


def _aware(trigger: str, value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise PositionError(trigger, f"time {value!r} is out of range") from exc


# -- the hand-over rule --------------------------------------------------------------------

# Stamps come from Salesforce's clock and `reached` partly from ours: re-read this much
# before a resume time, so clock skew and late commits cannot open a hole.
RESUME_OVERLAP = timedelta(minutes=1)


@dataclass(frozen=True)
class StreamResume:
    """How the streaming source starts: subscribe from `replay_id` when there is one;
    otherwise subscribe for new events and back-fill [`fill_from`, now] first."""

    replay_id: ReplayId | None
    fill_from: datetime | None


def stream_resume(position: Position | None, lookback: timedelta) -> StreamResume | None:
    """None: nothing stored, the trigger's `start_from` decides."""
    if position is None:
        return None
    if isinstance(position, WatermarkPosition):  # polling ran last: fill from its watermark
        return StreamResume(None, _minus(position.time, lookback))
    if position.replay_id is not None:
        return StreamResume(position.replay_id, None)
    if position.reached is None:
        return None  # an old `{"replay_id": null}` without any time: start_from decides
    return StreamResume(None, _minus(position.reached, RESUME_OVERLAP))


def expired_fill_from(position: Position | None, now: datetime) -> datetime:
    """Where a back-fill starts when the stored replay id has left retention: the time the
    stream had reached, never "now" (which would skip everything made while down)."""
    reached = position.reached if isinstance(position, ReplayPosition) else None
    return _minus(reached or now, RESUME_OVERLAP)


def poll_resume(position: Position | None, lookback: timedelta) -> WatermarkPosition | None:
    """The poller's watermark; from a streaming position, the time the stream reached
    (looking back no further than the look-back window before it). None: start_from decides."""
    if isinstance(position, WatermarkPosition):
        return position
    if position is None or position.reached is None:
        return None
    time = position.reached.replace(microsecond=0)
    return WatermarkPosition(time, "", _minus(time, lookback))


def _minus(time: datetime, delta: timedelta) -> datetime:
    """`time - delta`, never before 1970 (nothing in an org is older)."""
    try:
        return max(time - delta, EPOCH)
    except OverflowError:
        return EPOCH
