"""The leadership round's judgements that need memory across rounds: whose a live lease under
this replica's own name is, which free trigger is an orphan and which orphans stay put, what to
give up beyond the share, and whether a release heard of was this process's own.

Kept apart from `leadership` (which runs the rounds and the sources) so that each rule is read,
and tested, on its own.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Container, Iterable, Iterator, Mapping, Set
from datetime import datetime

from .logs import get_logger
from .store.leadership import TriggerLease

log = get_logger(__name__)

# A trigger seen free in this many rounds in a row before the present one is taken even
# beyond the fair share. Two: between them every replica had a round after it came free,
# so one under its share would have taken it; it is left over (a replica counted live that
# takes nothing), and reading it beats spreading it.
ORPHANED_AFTER = 2


class OwnLease(enum.Enum):
    """What a live lease under this replica's name, not held by this process, is."""

    # This process's own, or a dead predecessor's: nobody renews it. Taken (or handed back).
    LEFTOVER = "leftover"
    # Renewed by someone else: another running process shares the name.
    TWIN = "twin"
    # Seen once, not long enough to tell: left alone for now.
    UNSURE = "unsure"


class OwnNameLeases:
    """Tells a twin's lease from a leftover without trusting the name alone.

    The name cannot tell them apart: a predecessor's lease, a lease this process acquired
    whose answer was lost, and a twin's all carry it. Renewal does: a twin renews its lease
    every round, so its `expires_at` (or epoch) moves; a leftover's stays put. A lease seen
    unchanged over `settle_s` (two rounds: a twin whose round takes long still renews within
    them) is a leftover. A lease whose acquisition this process asked for and got no answer to
    is its own at once, as is any in the process's first round (a restart: nothing of this
    process ran before)."""

    def __init__(self, settle_s: float) -> None:
        self._settle_s = settle_s
        self._unanswered: set[str] = set()
        # Per trigger: the lease's (epoch, expires_at) when first seen so, and when (monotonic).
        self._seen: dict[str, tuple[tuple[int, datetime], float]] = {}
        # Triggers led under this replica's name by another process, at the last round; and
        # those already logged (`replica_name_shared` is said once per trigger).
        self.shared: set[str] = set()
        self._said_shared: set[str] = set()

    def sort_out(
        self,
        replica: str,
        candidates: Iterable[str],
        leases: Mapping[str, TriggerLease],
        first_round: bool,
        now_s: float,
    ) -> tuple[list[str], list[TriggerLease]]:
        """Of `candidates` (not held by this process), the triggers free to take (never held,
        run out or released), and the live leases under `replica` that nobody else runs.
        Those another process of the name renews are left to it, and said."""
        self.shared = set()
        free: list[str] = []
        leftovers: list[TriggerLease] = []
        for trigger in candidates:
            lease = leases.get(trigger)
            if lease is None or not lease.live or lease.holder != replica:
                self.forget(trigger)
                if lease is None or not lease.live:
                    free.append(trigger)
                continue
            verdict = self.judge(lease, first_round, now_s)
            if verdict is OwnLease.LEFTOVER:
                leftovers.append(lease)
            elif verdict is OwnLease.TWIN:
                self._say_shared(replica, trigger)
        return free, leftovers

    def own_leftovers(
        self,
        replica: str,
        triggers: Iterable[str],
        leases: Iterable[TriggerLease],
        first_round: bool,
        now_s: float,
    ) -> list[TriggerLease]:
        """Of the live leases on `triggers` (not held by this process) under `replica`, those
        it may release at shutdown: its own acquisitions whose answer was lost, and leftovers
        judged so (a twin's are left to it)."""
        wanted = set(triggers)
        return [
            lease
            for lease in leases
            if lease.trigger in wanted
            and lease.live
            and lease.holder == replica
            and self.judge(lease, first_round, now_s) is OwnLease.LEFTOVER
        ]

    def _say_shared(self, replica: str, trigger: str) -> None:
        self.shared.add(trigger)
        if trigger not in self._said_shared:
            self._said_shared.add(trigger)
            log.error(
                "replica_name_shared",
                trigger=trigger,
                replica=replica,
                fix="give each process its own ha.replica_name, or leave it unset (hostname-pid)",
            )

    def asking(self, trigger: str) -> None:
        """An acquisition is on its way: until it is answered, the lease may be this process's."""
        self._unanswered.add(trigger)

    def answered(self, trigger: str) -> None:
        self._unanswered.discard(trigger)

    def unanswered(self, trigger: str) -> bool:
        """Whether this process asked for the lease and got no answer: the round that asked
        had room for it, so it is taken whatever the share now."""
        return trigger in self._unanswered

    def forget(self, trigger: str) -> None:
        """The lease is held here now, or is not under this name: nothing to tell any more."""
        self._unanswered.discard(trigger)
        self._seen.pop(trigger, None)

    def judge(self, lease: TriggerLease, first_round: bool, now_s: float) -> OwnLease:
        trigger = lease.trigger
        if first_round or trigger in self._unanswered:
            return OwnLease.LEFTOVER
        state = (lease.epoch, lease.expires_at)
        seen = self._seen.get(trigger)
        if seen is None or seen[0] != state:
            self._seen[trigger] = (state, now_s)
            return OwnLease.UNSURE if seen is None else OwnLease.TWIN
        return OwnLease.LEFTOVER if now_s - seen[1] >= self._settle_s else OwnLease.UNSURE


class FreeRounds:
    """How many rounds in a row each trigger was seen free here: one seen free long enough
    is an orphan, taken whatever the share."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def orphaned(self, trigger: str) -> bool:
        return self._counts.get(trigger, 0) >= ORPHANED_AFTER

    def count(self, free: Iterable[str], held: Container[str], shed: Container[str]) -> None:
        """After a round: those seen `free` and still not `held` count one more round; what
        this replica just gave up (`shed`) is left for the others, counted from zero."""
        self._counts = {
            t: 0 if t in shed else self._counts.get(t, 0) + 1 for t in free if t not in held
        }


class PinnedOrphans:
    """Orphans taken beyond the fair share, each with the live replicas of that moment.

    Such an orphan is left over because a replica counts as live yet takes nothing (its rounds
    fail after their heartbeat, or its configuration lacks the trigger). Shedding it would only
    have it orphaned again two rounds later, and so on forever (read one round in four, its
    source restarted each time). It is kept until the set of live replicas changes: then the
    share is worth another try."""

    def __init__(self) -> None:
        self._pinned: dict[str, frozenset[str]] = {}

    def pin(self, trigger: str, live: frozenset[str]) -> None:
        self._pinned[trigger] = live

    def forget(self, trigger: str) -> None:
        self._pinned.pop(trigger, None)

    def pinned(self, live: frozenset[str]) -> set[str]:
        """Those still pinned under `live`; the others are forgotten."""
        self._pinned = {t: seen for t, seen in self._pinned.items() if seen == live}
        return set(self._pinned)


def to_shed(counted: Set[str], share: int, pinned: Set[str]) -> list[str]:
    """What to give up to come down to `share`: the last by name. Pinned orphans are kept,
    and counted apart: extra by nature, they never push another trigger out."""
    return sorted(counted - pinned)[share:]


class OwnReleases:
    """The round in which this process released each trigger: its own release's notification
    comes back to it, and is no reason for a round."""

    def __init__(self) -> None:
        self._released_in: dict[str, int] = {}

    def heard_back(self, trigger: str, rounds_done: int) -> bool:
        """Whether a release of `trigger` heard of now is this process's own (of this round
        or the one before)."""
        return self._released_in.get(trigger, -2) >= rounds_done - 1

    @contextlib.contextmanager
    def releasing(self, trigger: str, rounds_done: int) -> Iterator[list[bool]]:
        """Marks `trigger` as released by this replica in this round before the release is
        sent: its notification may be heard (`Leadership.lease_released`) before the
        release's answer comes back, and must not count as another replica's. Unmarked again
        unless the caller appends to the list it is given (the release went through)."""
        previous = self._released_in.get(trigger)
        self._released_in[trigger] = rounds_done
        released: list[bool] = []
        try:
            yield released
        finally:
            if not released:
                if previous is None:
                    self._released_in.pop(trigger, None)
                else:
                    self._released_in[trigger] = previous
