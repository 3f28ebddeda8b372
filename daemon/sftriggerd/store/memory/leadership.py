"""The in-memory engine's leadership: trigger leases with epochs and replica heartbeats, in
dicts. Plain functions of the tables and a time; the engine runs them under its lock, which
makes the fence check and the write it guards one atomic step."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from ..clock import Clock
from ..leadership import Fence, LeaseLostError, Replica, TriggerLease


@dataclass
class LeaseTables:
    leases: dict[str, TriggerLease] = field(default_factory=dict)
    replicas: dict[str, Replica] = field(default_factory=dict)

    def _current(self, trigger: str, now: datetime) -> TriggerLease | None:
        lease = self.leases.get(trigger)
        return None if lease is None else replace(lease, live=lease.expires_at > now)

    def check_fence(self, trigger: str, fence: Fence, now: datetime) -> None:
        lease = self._current(trigger, now)
        if lease is None or not lease.live or lease.fence != fence:
            raise LeaseLostError(trigger, fence)

    def acquire(
        self, trigger: str, replica: str, lasting: timedelta, now: datetime
    ) -> TriggerLease | None:
        old = self._current(trigger, now)
        if old is not None and old.live and old.holder != replica:
            return None
        # Free, or held under this replica's name by an earlier process of it (a restart):
        # the next epoch either way, which fences that process out should it still run.
        new = TriggerLease(
            trigger=trigger,
            holder=replica,
            epoch=(old.epoch if old is not None else 0) + 1,
            acquired_at=now,
            expires_at=now + lasting,
            live=True,
        )
        self.leases[trigger] = new
        ended = None if old is None else min(old.expires_at, now)
        return replace(new, live=lasting > timedelta(0), previous_ended_at=ended)

    def renew(
        self, replica: str, epochs: Mapping[str, int], lasting: timedelta, now: datetime
    ) -> list[TriggerLease]:
        renewed: list[TriggerLease] = []
        for trigger, epoch in sorted(epochs.items()):
            lease = self._current(trigger, now)
            if lease is not None and lease.live and lease.fence == Fence(replica, epoch):
                self.leases[trigger] = replace(lease, expires_at=now + lasting)
                live = lasting > timedelta(0)
                renewed.append(replace(lease, expires_at=now + lasting, live=live))
        return renewed

    def release(self, trigger: str, fence: Fence, now: datetime) -> bool:
        lease = self._current(trigger, now)
        if lease is None or not lease.live or lease.fence != fence:
            return False
        self.leases[trigger] = replace(lease, expires_at=now)
        return True

    def all(self, now: datetime) -> list[TriggerLease]:
        return [
            lease
            for trigger in sorted(self.leases)
            if (lease := self._current(trigger, now)) is not None
        ]

    def live(self, now: datetime) -> int:
        """How many triggers a replica leads (`store.transfer.led_by_replicas`)."""
        return sum(lease.live for lease in self.all(now))

    def end_fences(self) -> None:
        """After an import: whoever starts next takes each lease under a new epoch."""
        self.leases = {t: replace(x, epoch=x.epoch + 1) for t, x in self.leases.items()}

    def heartbeat(self, replica: str, forget_after: timedelta, now: datetime) -> None:
        known = self.replicas.get(replica)
        started = known.started_at if known is not None else now
        self.replicas[replica] = Replica(replica, started, now)
        for name, other in list(self.replicas.items()):
            if name != replica and other.heartbeat_at < now - forget_after:
                del self.replicas[name]

    def seen(self, seen_within: timedelta | None, now: datetime) -> list[Replica]:
        return [
            self.replicas[name]
            for name in sorted(self.replicas)
            if seen_within is None or self.replicas[name].heartbeat_at >= now - seen_within
        ]


class LeadershipMethods:
    """The engine's leadership methods (of `base.Store`), each one step under its lock."""

    _lock: asyncio.Lock
    _clock: Clock
    _leadership: LeaseTables

    def _check_open(self) -> None: ...

    async def heartbeat(self, replica: str, forget_after: timedelta) -> None:
        async with self._lock:
            self._check_open()
            self._leadership.heartbeat(replica, forget_after, self._clock())

    async def retire_replica(self, replica: str) -> None:
        async with self._lock:
            self._check_open()
            self._leadership.replicas.pop(replica, None)

    async def replicas(self, seen_within: timedelta | None = None) -> list[Replica]:
        self._check_open()
        return self._leadership.seen(seen_within, self._clock())

    async def acquire_lease(
        self, trigger: str, replica: str, lasting: timedelta
    ) -> TriggerLease | None:
        async with self._lock:
            self._check_open()
            return self._leadership.acquire(trigger, replica, lasting, self._clock())

    async def renew_leases(
        self, replica: str, epochs: Mapping[str, int], lasting: timedelta
    ) -> list[TriggerLease]:
        async with self._lock:
            self._check_open()
            return self._leadership.renew(replica, epochs, lasting, self._clock())

    async def release_lease(self, trigger: str, fence: Fence) -> bool:
        async with self._lock:
            self._check_open()
            return self._leadership.release(trigger, fence, self._clock())

    async def leases(self) -> list[TriggerLease]:
        self._check_open()
        return self._leadership.all(self._clock())
