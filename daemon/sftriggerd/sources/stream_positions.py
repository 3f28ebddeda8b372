"""The streaming source's stored position: what it reads on (re)subscribe, what it writes
with each batch, and the back-fills that move it.

A back-fill stores its pages without moving the checkpoint and saves its final position only
once every page is stored, so a failure on any page leaves the old position, and the next
attempt fills the whole range again (ingestion is idempotent on the event id).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ..config.settings import TriggerSettings
from ..logs import get_logger
from ..store.records import Checkpoint
from .backfill import Backfill
from .context import SourceContext
from .position import (
    Position,
    ReplayId,
    ReplayPosition,
    StreamResume,
    decode,
    encode,
    expired_fill_from,
    stream_resume,
)

log = get_logger(__name__)


def _cometd_resumable(replay: ReplayId) -> bool:
    """Without a transport's word: CometD's (an opaque Pub/Sub replay id means nothing to it)."""
    return isinstance(replay, int)


class StreamPositions:
    def __init__(self, trigger: TriggerSettings, channel: str, context: SourceContext) -> None:
        self.trigger = trigger
        self.channel = channel
        self._store = context.store
        self._ingest = context.ingest
        self._clock: Callable[[], datetime] = context.clock
        # Every change stamped before this is stored: the newest streamed event's time, or
        # the end of the last completed back-fill; kept next to the replay id.
        self.reached: datetime | None = None

    async def load(self) -> Position | None:
        """The stored position (PositionError when it cannot be read)."""
        saved = await self._store.checkpoint(self.trigger.name)
        if saved is None:
            return None
        position = decode(self.trigger.name, saved.position, saved.event_time, self.channel)
        if isinstance(position, ReplayPosition) and position.reached is not None:
            self.reached = _later(self.reached, position.reached)
        return position

    async def resume(
        self, resumable: Callable[[ReplayId], bool] = _cometd_resumable
    ) -> StreamResume | None:
        """Where to resume; a stored replay id the transport cannot subscribe after (one
        stored by another transport) is resumed from by time."""
        position = await self.load()
        if (
            isinstance(position, ReplayPosition)
            and position.replay_id is not None
            and not resumable(position.replay_id)
        ):
            position = ReplayPosition(position.channel, None, position.reached)
        return stream_resume(position, self.trigger.poll_lookback)

    async def expired_fill_from(self) -> datetime:
        return expired_fill_from(await self.load(), self._clock())

    def checkpoint(self, replay: ReplayId | None, newest: datetime | None) -> Checkpoint:
        """The position after a batch of streamed events, the last with replay id `replay`.

        An event's time comes from the message: one stamped in the future (a broken or
        hostile header) must not carry the time reached past now, or a later resume by time
        would skip everything made in between."""
        if newest is not None:
            newest = min(newest, self._clock())
        self.reached = _later(self.reached, newest)
        position = ReplayPosition(self.channel, replay, self.reached)
        return Checkpoint(trigger=self.trigger.name, position=encode(position), event_time=newest)

    async def keep_idle(self, replay: ReplayId) -> bool:
        """Stores `replay`, a position an idle stream has passed with nothing for this trigger,
        unless it is the stored one already; the time reached stays (no event proved a later
        one). Returns whether it stored it."""
        position = await self.load()
        if isinstance(position, ReplayPosition) and position.replay_id == replay:
            return False
        await self._ingest(self.trigger.name, [], self.checkpoint(replay, None))
        return True

    async def save_start(self, start: datetime) -> None:
        """A new trigger subscribed for new events only: remember from when, so a restart
        before its first event resumes from that time instead of from "now" again."""
        if await self._store.checkpoint(self.trigger.name) is None:
            await self._ingest(self.trigger.name, [], self.checkpoint(None, start))

    async def fill(
        self, backfill: Backfill, start: datetime, *, save: bool, replay: ReplayId | None = None
    ) -> int:
        """Fills [start, now]; with `save`, then stores the position (replay id `replay`,
        reached: the fill's end). Returns how many events were new."""
        end = self._clock()
        filled = await backfill.fill_range(start, end)
        if save:
            self.reached = _later(self.reached, end)
            position = ReplayPosition(self.channel, replay, self.reached)
            checkpoint = Checkpoint(trigger=self.trigger.name, position=encode(position))
            await self._ingest(self.trigger.name, [], checkpoint)
        else:
            # Saved with the batch that announced the gap, once that batch is stored.
            self.reached = _later(self.reached, end)
        return filled


def _later(first: datetime | None, second: datetime | None) -> datetime | None:
    if first is None or second is None:
        return first or second
    return max(first, second)
