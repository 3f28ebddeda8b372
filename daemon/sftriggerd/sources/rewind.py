"""Where a rewind puts a trigger, and when it is refused: a pure decision, no I/O.

`--to` is a replay id or a time (`moments.parse_moment`). A CometD trigger's replay id is
digits; a Pub/Sub trigger's is the base64 text its webhook bodies show (`source.replay_id`),
read after the forms of a time (none of which is base64 of a replay id's length).

- A replay id is for streamed triggers only. The stream re-reads every event after it. How
  old it is cannot be known offline: when Salesforce no longer holds it, the source's
  expired-replay back-fill polls from the time stored with it, here the start of the
  retention window (all that could still be replayed), so nothing in between is lost.
- A time on a streamed trigger must lie within Salesforce's retention of streamed events
  (72 hours; change data capture keeps 3 days, the same span); the source resumes from it as
  after a switch from polling (back-fill from that time, then subscribe), or, for platform
  events, replays what is retained and drops what is older than the time.
- A time on a polled trigger may be any time: the poller reads from it, and its look-back
  goes no further back than it (the floor, as `start_from` sets it for a new trigger).

Events already stored are skipped when read again (ingest is idempotent on the event id, and
a back-fill skips records already stored as new); `resend` says which stored events the
rewind's `--resend` sends again.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..config.settings import TriggerSettings
from ..errors import UsageError
from ..moments import parse_moment
from ..store.replay import Selection
from .plan import plan_source
from .position import Position, ReplayPosition, WatermarkPosition, format_time

STREAM_RETENTION = timedelta(hours=72)
CDC_RETENTION = timedelta(days=3)
_REPLAY_ID = re.compile(r"[0-9]{1,18}")  # 18 digits always fit a 64-bit replay id
# Standard base64 with its padding, as bodies and checkpoints write Pub/Sub replay ids.
_BASE64 = re.compile(
    r"(?:[A-Za-z0-9+/]{4})+(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?|"
    r"[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}="
)
_MAX_TOKEN_CHARS = 1024


class RewindRefused(UsageError):
    """The point cannot be rewound to; the message says why."""


@dataclass(frozen=True)
class Rewind:
    """The trigger's new position, what `--resend` resends, and the point for people."""

    position: Position
    event_time: datetime | None
    resend: Selection
    point: str


def plan_rewind(trigger: TriggerSettings, to: str, now: datetime) -> Rewind:
    """Raises `RewindRefused` (and nothing else) when the point is unusable."""
    text = to.strip()
    streamed = plan_source(trigger).plan != "polling"
    pubsub = streamed and trigger.resolved_transport == "pubsub"
    if not pubsub and _REPLAY_ID.fullmatch(text):
        return _to_replay_id(trigger, int(text), streamed, now)
    try:
        when = parse_moment(text, now)
    except ValueError as exc:
        if pubsub:
            return _to_pubsub_replay_id(trigger, text, now, exc)
        raise RewindRefused(f"--to: {exc}; or give a replay id (digits)") from None
    if when > now:
        raise RewindRefused(f"--to {format_time(when)} is in the future")
    if streamed:
        cdc = trigger.channel_kind == "cdc"
        if when < now - (CDC_RETENTION if cdc else STREAM_RETENTION):
            kept = "3 days (change data capture)" if cdc else "72 hours"
            raise RewindRefused(
                f"--to {format_time(when)} is outside Salesforce's retention: events on"
                f" {trigger.resolved_channel} are kept {kept}, so nothing before then can be"
                " re-read; pick a later time"
            )
        assert trigger.resolved_channel is not None
        position: Position = ReplayPosition(trigger.resolved_channel, None, when)
    else:
        position = WatermarkPosition(when, "", when)
    selection = Selection(trigger=trigger.name, occurred_since=when)
    return Rewind(position, when, selection, format_time(when))


def _to_replay_id(
    trigger: TriggerSettings, replay_id: int, streamed: bool, now: datetime
) -> Rewind:
    if not streamed or trigger.resolved_channel is None:
        raise RewindRefused(
            f"trigger {trigger.name!r} polls, and polling has no replay ids; give a time"
        )
    # How far the back-fill reaches if the id left retention: all Salesforce could replay.
    horizon = now - STREAM_RETENTION
    position = ReplayPosition(trigger.resolved_channel, replay_id, horizon)
    selection = Selection(trigger=trigger.name, after_replay_id=replay_id)
    return Rewind(position, horizon, selection, f"replay id {replay_id}")


def _to_pubsub_replay_id(
    trigger: TriggerSettings, text: str, now: datetime, not_a_time: ValueError
) -> Rewind:
    """A Pub/Sub trigger's replay id: base64 (as its bodies show it), never bare digits
    (a CometD replay id, which Pub/Sub does not know)."""
    usage = (
        f"--to: {not_a_time}; or give a replay id of this Pub/Sub trigger in base64, as its"
        " webhook bodies show it (source.replay_id)"
    )
    if _REPLAY_ID.fullmatch(text):
        raise RewindRefused(
            f"--to {text}: trigger {trigger.name!r} streams over the Pub/Sub API, whose replay"
            " ids are not numbers; give one in base64, as its webhook bodies show it"
            " (source.replay_id)"
        )
    if len(text) > _MAX_TOKEN_CHARS or not _BASE64.fullmatch(text):
        raise RewindRefused(usage)
    try:
        replay_id = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RewindRefused(usage) from None
    assert trigger.resolved_channel is not None  # a streamed trigger has its channel
    horizon = now - STREAM_RETENTION
    position = ReplayPosition(trigger.resolved_channel, replay_id, horizon)
    selection = Selection(trigger=trigger.name, after_replay_token=text)
    return Rewind(position, horizon, selection, f"replay id {text}")
