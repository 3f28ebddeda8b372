"""The in-memory engine's resends and rewinds: which deliveries a selection takes (by
replay id too), putting them back in the queue, and moving a trigger's checkpoint back.

Each runs under the engine's lock, as one step, like every other operation of the engine.
"""

from __future__ import annotations

import asyncio

from ..clock import Clock
from ..leadership import Fence
from ..records import Checkpoint
from ..replay import Requeued, Selection
from .leadership import LeaseTables
from .tables import OPEN, DeliveryRecord, EventRow, replay_id_after, replay_text, selected


class ReplayMethods:
    """The engine's resend and rewind methods (of `base.Store`), each one step under its lock."""

    _lock: asyncio.Lock
    _clock: Clock
    _leadership: LeaseTables
    _events: dict[tuple[str, str], EventRow]
    _deliveries: dict[int, DeliveryRecord]
    _checkpoints: dict[str, Checkpoint]

    def _check_open(self) -> None: ...

    async def requeue(self, selection: Selection) -> Requeued:
        if selection.by_replay and selection.trigger is None:
            raise ValueError("a selection by replay id names its trigger")
        async with self._lock:
            self._check_open()
            now = self._clock()
            first_seq = self._first_after_replay(selection)
            matched = [d for d in self._deliveries.values() if selected(d, selection, first_seq)]
            wanted = [d for d in matched if d.status in selection.statuses]
            already = sum(1 for d in matched if d.status in OPEN)
            for d in wanted:
                d.requeue(now)
        return Requeued(len(wanted), already, frozenset(d.endpoint for d in wanted))

    def _first_after_replay(self, selection: Selection) -> int | None:
        """The first event a selection by replay id takes (None: it takes none)."""
        rows = [row for row in self._events.values() if row.trigger == selection.trigger]
        firsts: list[int] = []
        if selection.after_replay_id is not None:
            after = selection.after_replay_id
            seqs = [row.seq for row in rows if replay_id_after(row.body, after)]
            if not seqs:
                return None
            firsts.append(min(seqs))
        if selection.after_replay_token is not None:
            token = selection.after_replay_token
            seqs = [row.seq for row in rows if replay_text(row.body) == token]
            if not seqs:
                return None
            firsts.append(max(seqs) + 1)
        return max(firsts, default=None)

    async def rewind(
        self, trigger: str, checkpoint: Checkpoint, fence: Fence | None = None
    ) -> None:
        async with self._lock:
            self._check_open()
            if fence is not None:
                self._leadership.check_fence(trigger, fence, self._clock())
            self._checkpoints[trigger] = Checkpoint(
                trigger=trigger,
                position=checkpoint.position,
                event_time=checkpoint.event_time,
                updated_at=self._clock(),
            )
