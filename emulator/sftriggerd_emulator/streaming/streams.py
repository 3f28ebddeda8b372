"""Event streams: one replay-id sequence each, with the retention window Salesforce keeps.

A stream is what a replay id belongs to. Every platform event, PushTopic and generic channel
has its own stream; all Change Data Capture channels (`/data/ChangeEvents`,
`/data/AccountChangeEvent`, custom `__chn` channels) are views of one change stream, so an
event carries the same replay id whichever of them delivers it.

Replay ids increase but skip numbers, as Salesforce's do, so a client that computes "the next
id" instead of storing the one it saw is caught. The steps are derived from the stream name
and the previous id, which keeps a test run reproducible.
"""

from __future__ import annotations

import bisect
import copy
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

REPLAY_NEW = -1
REPLAY_ALL = -2
CDC_STREAM = "/data/ChangeEvents"


@dataclass(frozen=True)
class StoredEvent:
    replay_id: int
    time: datetime
    # CDC: the entityName; other streams: the stream's own name. Views filter on it.
    entity: str
    # The Bayeux message's `data`, with `event.replayId` filled in.
    data: dict[str, Any]


class ReplayInvalidError(Exception):
    """A subscribe asked to start from a replay id the stream cannot serve."""

    def __init__(self, replay: object) -> None:
        super().__init__(f"replay id {replay!r} is outside the retention window")
        self.replay = replay


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def first_replay_id(name: str) -> int:
    """Where a fresh stream starts: somewhere in the thousands, different per stream."""
    return 1_000 + _digest(name) % 9_000


def replay_step(name: str, previous: int) -> int:
    """1, 2 or 5: mostly small, but gaps appear within the first few events."""
    return (1, 2, 5)[_digest(f"{name}:{previous}") % 3]


class Stream:
    """Retained events of one stream in replay-id order, and the last id handed out."""

    def __init__(
        self,
        name: str,
        retention_s: float,
        last_replay_id: int = 0,
        events: Iterable[StoredEvent] = (),
    ) -> None:
        self.name = name
        self.retention = timedelta(seconds=retention_s)
        self.last_replay_id = last_replay_id
        self._events: list[StoredEvent] = sorted(events, key=lambda event: event.replay_id)
        self._ids: list[int] = [event.replay_id for event in self._events]

    def __len__(self) -> int:
        return len(self._events)

    @property
    def oldest_replay_id(self) -> int | None:
        return self._ids[0] if self._ids else None

    def append(
        self,
        time: datetime,
        entity: str,
        data: dict[str, Any],
        *,
        fill_replay_id: bool = True,
        replay_id: int | None = None,
    ) -> StoredEvent:
        """Stores `data` as the next event; its `event.replayId` is set to the new id unless
        `fill_replay_id` is false (a raw message, sent as given). `replay_id`, when above
        the last id, is the new id instead of the next one."""
        if replay_id is None or replay_id <= self.last_replay_id:
            replay_id = self._next_replay_id()
        filled = copy.deepcopy(data)
        if fill_replay_id:
            filled.setdefault("event", {})["replayId"] = replay_id
        event = StoredEvent(replay_id, time, entity, filled)
        self.last_replay_id = replay_id
        self._events.append(event)
        self._ids.append(replay_id)
        return event

    def _next_replay_id(self) -> int:
        if self.last_replay_id == 0:
            return first_replay_id(self.name)
        return self.last_replay_id + replay_step(self.name, self.last_replay_id)

    def purge(self, now: datetime) -> list[int]:
        """Drops events older than the retention window; returns their replay ids."""
        cutoff = now - self.retention
        count = 0
        while count < len(self._events) and self._events[count].time < cutoff:
            count += 1
        return self._drop_first(count)

    def drop_before(self, replay_id: int) -> list[int]:
        """Drops events whose replay id is below `replay_id`; returns their ids."""
        return self._drop_first(bisect.bisect_left(self._ids, replay_id))

    def _drop_first(self, count: int) -> list[int]:
        dropped = self._ids[:count]
        del self._events[:count]
        del self._ids[:count]
        return dropped

    def start_cursor(self, replay: object) -> int:
        """The cursor a subscription starts from: it receives events with a larger id.

        -1 starts at the tip, -2 before everything retained, N after event N, which must lie
        within what is retained. Raises ReplayInvalidError otherwise.
        """
        if replay == REPLAY_NEW:
            return self.last_replay_id
        if replay == REPLAY_ALL:
            return 0
        if not isinstance(replay, int) or isinstance(replay, bool):
            raise ReplayInvalidError(replay)
        oldest = self.oldest_replay_id
        if oldest is None or not oldest <= replay <= self.last_replay_id:
            raise ReplayInvalidError(replay)
        return replay

    def after(self, cursor: int) -> list[StoredEvent]:
        """Retained events with a replay id above `cursor`, oldest first."""
        return self._events[bisect.bisect_right(self._ids, cursor) :]

    def has_after(self, cursor: int) -> bool:
        return bool(self._ids) and self._ids[-1] > cursor
