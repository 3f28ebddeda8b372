"""One replica per trigger: each trigger's source runs only where its lease is held.

Every replica runs this loop on the shared store. Each round (every `ha.renew_every`) it
heartbeats, renews the leases it holds (one transaction), counts the live replicas, gives up
what it holds beyond its fair share (ceil(triggers / live replicas)) so that triggers spread,
and takes free leases (never held, run out, or released) up to that share. A trigger left
free for two whole rounds is taken whatever the share, so none is left unread should a
replica count as live yet take nothing; it is kept until the live replicas change. A won
lease starts the trigger's source, built afresh so that it reads its position from the
store; a lost one stops it.

A lease lasts `ha.takeover` minus one renew period, so a follower's next round after a dead
leader's lease ran out falls within `ha.takeover`. The leader must stop its source before
that: a watchdog stops any source whose lease was not renewed by the time it runs out,
minus a margin for the source to drain, measured with the monotonic clock from when the
last successful renewal was *sent* (an answer that came late does not extend it). Should a
source still write (a process frozen past its lease), each run's writes carry its own lease's
epoch as a fence (none once the run is over): the store refuses them once the trigger is
taken again, by another replica or this one (`led_sources.fenced_run`).

A live lease under this replica's own name that this process does not hold is judged by
`lease_choices.OwnNameLeases`: its crashed predecessor's (in the first round), its own whose
acquisition went unanswered, or one nobody renews is a leftover, taken under the next epoch
(or handed back at once when beyond the share); one that someone renews is another running
process sharing the name (a configuration mistake), left to it and said.

A source to stop (a shed or lost lease) drains in the background, the round waiting for it
only as long as the next renewal can spare: a slow drain holds up no renewal. A shed lease
stays held, and renewed, until its source has stopped; then it is released. On shutdown each
source is drained and its lease released at once (it runs out "now"), so a follower takes
over at its next round instead of waiting for the lease to run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Mapping

from .errors import StoreError
from .held_leases import HeldLease
from .held_leases import Timing as Timing
from .lease_choices import FreeRounds, OwnNameLeases, OwnReleases, PinnedOrphans, to_shed
from .lease_watchdog import BackgroundStops, end_watch, stop_run, watch
from .led_sources import (
    LedSource,
    RunSource,
    StopsOnLostLease,
    fenced_run,
    run_fence,
    run_plainly,
)
from .logs import get_logger
from .metrics import Metrics
from .store.base import Store
from .store.leadership import Fence, LeaseLostError, TriggerLease

log = get_logger(__name__)

# Replicas silent this many takeovers are forgotten (a pod gone for good).
_FORGET_AFTER_TAKEOVERS = 20


class Leadership:
    """The part that holds this replica's leases and runs the sources under them."""

    name = "leadership"

    def __init__(
        self,
        store: Store,
        replica: str,
        sources: Mapping[str, LedSource],
        timing: Timing,
        metrics: Metrics,
        run_source: RunSource = run_plainly,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.replica = replica
        self.sources = dict(sources)
        self.timing = timing
        self.metrics = metrics
        self._run_source = run_source
        self._monotonic = monotonic
        self._held: dict[str, HeldLease] = {}
        # Epochs of leases this replica held and lost: the fence its writes still carry.
        self._last_epoch: dict[str, int] = {}
        self._free_rounds = FreeRounds()
        self._leaders: dict[str, str] = {}
        self._round_now = asyncio.Event()
        self._own = OwnNameLeases(2 * timing.renew_every.total_seconds())
        self._pinned = PinnedOrphans()
        # Sources being stopped (shed or lost): not taken again until stopped.
        self._stops = BackgroundStops(log)
        self._own_releases = OwnReleases()
        self._rounds_done = 0
        for trigger in self.sources:  # from zero, so that `increase()` sees the first one
            for change in ("acquired", "lost", "released"):
                metrics.lease_changes.labels(trigger=trigger, change=change)

    # --- what the rest of the daemon reads -------------------------------------------------

    def fence_for(self, trigger: str) -> Fence:
        """The fence this replica's writes for `trigger` carry: from a source's run, that
        run's own (`led_sources.run_fence`); else the lease held now. Epoch 0 (never held, or
        a run over) and a lost lease's epoch are refused by the store: without the lease,
        nothing is written."""
        fence = run_fence(trigger)
        if fence is not None:
            return fence
        held = self._held.get(trigger)
        if held is not None:
            return held.lease.fence
        return Fence(self.replica, self._last_epoch.get(trigger, 0))

    def leads(self, trigger: str) -> bool:
        return trigger in self._held

    def leader_of(self, trigger: str) -> str | None:
        """Who led the trigger at the last round (None: nobody)."""
        if trigger in self._held:
            return self.replica
        return self._leaders.get(trigger)

    def led(self) -> list[str]:
        return sorted(self._held)

    def not_ready_reasons(self) -> list[str]:
        # Until its first round this replica does not know what it leads; after it, a
        # follower is ready (it delivers, and stands by to take triggers over) and a leader
        # when the sources it runs are.
        if not self._rounds_done:
            return ["leadership: the first round (which triggers this replica leads) is not done"]
        shared = [
            f"leadership: another process runs as replica {self.replica} (it leads"
            f" {', '.join(sorted(self._own.shared))}): give each process its own ha.replica_name,"
            " or leave it unset"
        ]
        return (shared if self._own.shared else []) + [
            reason
            for trigger, held in self._held.items()
            if not held.releasing
            for reason in self.sources[trigger].not_ready_reasons()
        ]

    def lease_released(self, trigger: str) -> None:
        """Another replica released `trigger`'s lease (a hand-over): a round now may take
        it, instead of the next round up to `ha.renew_every` later."""
        if trigger not in self.sources or trigger in self._held:
            return
        if self._own_releases.heard_back(trigger, self._rounds_done):
            return  # its own release, heard back
        self._round_now.set()

    # --- the loop ------------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> None:
        # Its own event: the loop may also end on an error, and then the watchdog must end too.
        watch_over = asyncio.Event()
        watchdog = asyncio.create_task(self._watch(watch_over), name="leadership-watchdog")
        try:
            while not stopping.is_set():
                try:
                    await asyncio.wait_for(self.round(), self.timing.lasting.total_seconds())
                except (StoreError, TimeoutError) as exc:
                    # The watchdog stops what is not renewed in time; try again next round.
                    log.warning("leadership_round_failed", error=str(exc) or type(exc).__name__)
                await self._sleep(stopping, self.timing.renew_every.total_seconds())
        finally:
            watch_over.set()
            try:
                await end_watch(watchdog)
            finally:
                await self.hand_over()

    async def _sleep(self, stopping: asyncio.Event, seconds: float) -> None:
        stop = asyncio.create_task(stopping.wait())
        early = asyncio.create_task(self._round_now.wait())
        try:
            await asyncio.wait({stop, early}, timeout=seconds, return_when="FIRST_COMPLETED")
        finally:
            stop.cancel()
            early.cancel()
            self._round_now.clear()

    async def round(self) -> None:
        """One round: heartbeat, renew, then give up or take leases toward the fair share."""
        started_s = self._monotonic()
        lasting = self.timing.lasting
        await self.store.heartbeat(self.replica, self.timing.takeover * _FORGET_AFTER_TAKEOVERS)
        await self._renew()
        live = frozenset({r.name for r in await self.store.replicas(seen_within=lasting)})
        live |= {self.replica}
        share = math.ceil(len(self.sources) / len(live))
        leases = {lease.trigger: lease for lease in await self.store.leases()}
        self._leaders = {t: lease.holder for t, lease in leases.items() if lease.live}
        shed = to_shed(self._counted(), share, self._pinned.pinned(live))
        for trigger in shed:
            self._pinned.forget(trigger)
            self._held[trigger].releasing = True
            self._stops.start(trigger, self._release(trigger))
        candidates = [
            t for t in sorted(self.sources) if t not in self._held and t not in self._stops
        ]
        free, leftovers = self._own.sort_out(
            self.replica, candidates, leases, not self._rounds_done, self._monotonic()
        )
        for lease in leftovers:
            if len(self._counted()) < share or self._own.unanswered(lease.trigger):
                await self._acquire(lease.trigger)
            else:  # beyond the share: handed over, for a replica with room to take at once
                await self._hand_back(lease)
        for trigger in free:
            orphaned = self._free_rounds.orphaned(trigger)
            over = len(self._counted()) >= share
            if over and not orphaned:
                continue
            await self._acquire(trigger)
            if over and trigger in self._held:
                self._pinned.pin(trigger, live)
        self._free_rounds.count(free, held=self._held, shed=shed)
        self._rounds_done += 1
        await self._let_stops_finish(started_s)

    async def _let_stops_finish(self, started_s: float) -> None:
        """Waits for the sources being stopped, for half the time the next renewal can spare
        (a lease renewed at the round's start must be renewed again before its source is
        told to stop): a quick drain is released within the round, a slow one goes on
        draining in the background while the next rounds renew the other leases."""
        wait_s = self.timing.renewal_slack_s / 2 - (self._monotonic() - started_s)
        if self._stops and wait_s > 0:
            await self._stops.wait(wait_s)

    def _counted(self) -> set[str]:
        """The held leases that count toward the share (not those being given up)."""
        return {t for t, held in self._held.items() if not held.releasing}

    async def _hand_back(self, lease: TriggerLease) -> None:
        """Releases a leftover under this replica's name that it has no room for."""
        with self._releasing(lease.trigger) as released, contextlib.suppress(StoreError):
            # Unreleased (a store error), it runs out on its own.
            if await self.store.release_lease(lease.trigger, lease.fence):
                released.append(True)
                self._own.forget(lease.trigger)
                log.info("leftover_lease_released", trigger=lease.trigger, replica=self.replica)

    def _releasing(self, trigger: str) -> contextlib.AbstractContextManager[list[bool]]:
        """Marks `trigger` as released in this round (`lease_choices.OwnReleases`)."""
        return self._own_releases.releasing(trigger, self._rounds_done)

    async def _hand_back_leftovers(self) -> None:
        """At shutdown: releases the leases under this name that this process did not hold
        yet may call its own (an acquisition whose answer was lost, a leftover), so that no
        trigger waits for a retired replica's lease to run out."""
        try:
            leases = await self.store.leases()
        except StoreError:
            return  # unreleased, they run out on their own
        not_held = [t for t in self.sources if t not in self._held]
        first_round = not self._rounds_done
        now_s = self._monotonic()
        for lease in self._own.own_leftovers(self.replica, not_held, leases, first_round, now_s):
            await self._hand_back(lease)

    async def _renew(self) -> None:
        if not self._held:
            return
        sent_s = self._monotonic()
        epochs = {trigger: held.lease.epoch for trigger, held in self._held.items()}
        renewed = {
            lease.trigger: lease
            for lease in await self.store.renew_leases(self.replica, epochs, self.timing.lasting)
        }
        for trigger in list(self._held):
            held = self._held[trigger]
            lease = renewed.get(trigger)
            if lease is None or lease.epoch != held.lease.epoch:
                self._lose(trigger, "not renewed")
                continue
            held.lease = lease
            held.stop_at_s = sent_s + self._stop_after_s()
            if not held.releasing and (held.task is None or held.task.done()):
                # Stopped by the watchdog, yet the lease held: start it again, afresh.
                self._start(trigger, held)

    def _stop_after_s(self) -> float:
        return self.timing.lasting.total_seconds() - self.timing.margin_s

    async def _acquire(self, trigger: str) -> None:
        sent_s = self._monotonic()
        # Unanswered (the connection dropped after the commit, the round cut off), the lease
        # may be this process's: its next round takes it, as its own (`OwnNameLeases`).
        self._own.asking(trigger)
        lease = await self.store.acquire_lease(trigger, self.replica, self.timing.lasting)
        self._own.answered(trigger)
        if lease is None:
            return
        self._own.forget(trigger)
        held = HeldLease(lease=lease, stop_at_s=sent_s + self._stop_after_s())
        self._held[trigger] = held
        self._leaders[trigger] = self.replica
        self.metrics.lease_changes.labels(trigger=trigger, change="acquired").inc()
        if lease.previous_ended_at is not None:
            waited = (lease.acquired_at - lease.previous_ended_at).total_seconds()
            self.metrics.takeover_seconds.observe(max(0.0, waited))
        log.info("lease_acquired", trigger=trigger, replica=self.replica, epoch=lease.epoch)
        self._start(trigger, held)

    def _start(self, trigger: str, held: HeldLease) -> None:
        source = self.sources[trigger]
        rebuild: Callable[[], None] | None = getattr(source, "rebuild", None)
        if rebuild is not None:  # another replica may have moved the checkpoint meanwhile
            rebuild()
        held.stopping = asyncio.Event()
        held.task = asyncio.create_task(
            self._run_fenced(source, held.lease, held.stopping), name=f"led:{trigger}"
        )

    async def _run_fenced(
        self, source: LedSource, lease: TriggerLease, stopping: asyncio.Event
    ) -> None:
        """Runs the source until told to stop, its writes under this run's lease; a write
        the store refused for a lost lease stops it at once (and asks for a round, which
        finds the lease gone)."""
        try:
            with fenced_run(lease.trigger, lease.fence):
                run = StopsOnLostLease(source, stopping, self._round_now)
                await self._run_source(run, stopping)
        except LeaseLostError:
            stopping.set()
            self._round_now.set()

    def _lose(self, trigger: str, why: str) -> None:
        """Forgets a lease renewed no more; its source stops in the background."""
        held = self._held.pop(trigger)
        self._last_epoch[trigger] = held.lease.epoch
        self._pinned.forget(trigger)
        self.metrics.lease_changes.labels(trigger=trigger, change="lost").inc()
        log.warning("lease_lost", trigger=trigger, replica=self.replica, why=why)
        if not held.releasing:  # else its release, under way, stops it
            self._stops.start(trigger, stop_run(held, self._left_s(held)))

    async def _release(self, trigger: str) -> None:
        """Stops the source, then hands the lease over at once. Until then the lease is
        renewed as any other (the source still writes under it)."""
        held = self._held[trigger]
        await stop_run(held, self._left_s(held))
        if self._held.get(trigger) is not held:
            return  # lost meanwhile: nothing left to release
        del self._held[trigger]
        self._last_epoch[trigger] = held.lease.epoch
        released = False
        with self._releasing(trigger) as marked, contextlib.suppress(StoreError):
            # Unreleased (a store error), it runs out on its own.
            released = await self.store.release_lease(trigger, held.lease.fence)
            if released:
                marked.append(True)
        if released:
            self.metrics.lease_changes.labels(trigger=trigger, change="released").inc()
            log.info("lease_released", trigger=trigger, replica=self.replica)

    async def _watch(self, stopping: asyncio.Event) -> None:
        await watch(self._held, self._left_s, self._monotonic, stopping)

    def _left_s(self, held: HeldLease) -> float:
        """Until the lease runs out, by this replica's reckoning."""
        return held.stop_at_s + self.timing.margin_s - self._monotonic()

    async def hand_over(self) -> None:
        """Forgets this replica, then stops every source and releases every lease (shutdown),
        and waits for them all, those shed or lost before included.
        Forgotten first: a follower woken by a release (`lease_released`) then counts the
        replicas without this one, so its fair share takes in what is handed over."""
        with contextlib.suppress(StoreError):
            await self.store.retire_replica(self.replica)
        await self._hand_back_leftovers()
        for trigger, held in list(self._held.items()):
            if not held.releasing:
                held.releasing = True
                self._stops.start(trigger, self._release(trigger))
        # Every stop under way too (shed or lost before), so that none runs on unwatched.
        await self._stops.all_done()
