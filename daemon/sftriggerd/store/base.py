"""What the store does, shaped so the one rule (a position moves only with its events)
cannot be broken:

- a checkpoint moves only inside `ingest`, with the events and their deliveries, in one
  transaction, and ingestion is idempotent on (trigger, event id);
- a delivery changes state only through `record_outcome` with the claim that leased it, and a
  claim whose lease ran out (another process may hold it now) records nothing.

Time. Every time the store stamps or compares comes from the store's own clock: an engine
in this process takes a clock when it is made (the wall clock by default; tests give a fake
one), a database server reads its own. So no method takes a "now": where a caller picks a
time relative to now it gives a duration (a retry's delay, a retention, a max age, a lease),
and the store turns it into a time with its clock. Only times an operator names (a resend's
`since`/`until`) and the times of the changes themselves stay absolute.

Engines implement this class; engine SQL never appears here.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator, AsyncIterable, Mapping, Sequence
from datetime import timedelta

from .activity import RecentActivity
from .leadership import Fence, Replica, TriggerLease
from .records import (
    Checkpoint,
    Claim,
    DeliveryDetail,
    DeliveryRow,
    DeliveryStatus,
    IngestResult,
    NewEvent,
    OutboxCounts,
    Outcome,
    PoisonEvent,
    RecordState,
)
from .replay import Requeued, Selection
from .transfer import BATCH_ROWS, DumpBatch


class Store(abc.ABC):
    @abc.abstractmethod
    async def open(self, create: bool = True, migrate: bool = True) -> None:
        """Connects and brings the schema to the current version (`migrate`). With
        `create=False` a store that does not exist yet is an error (`StoreError`), not made.
        A schema newer than this version knows is refused (`StoreError`).

        With `migrate=False` the store is opened as found, nothing written: an older schema
        stays older (an older daemon may still be using it), and a store without a schema is
        an error whatever `create` says. For looking only (`sftriggerd doctor`)."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def schema_version(self) -> int: ...

    @abc.abstractmethod
    def supported_schema_version(self) -> int:
        """The schema version this sftriggerd brings a store to when it migrates it."""

    @abc.abstractmethod
    async def ping(self) -> bool:
        """True when the store answers a trivial query."""

    @abc.abstractmethod
    async def ingest(
        self,
        trigger: str,
        events: Sequence[NewEvent],
        checkpoint: Checkpoint | None,
        poison: Sequence[PoisonEvent] = (),
        fence: Fence | None = None,
    ) -> IngestResult:
        """Stores new events and their deliveries and moves the checkpoint, atomically.

        Events already stored for this trigger are skipped (counted as duplicates). Poison
        events (messages that could not be handled) are kept in the same transaction, so the
        checkpoint never moves past a message that is neither stored nor recorded as poison.
        `checkpoint=None` stores without moving it: the first parts of one large message,
        whose position is saved with its last part.

        With a `fence`, the trigger's lease is checked in the same transaction: unless the
        fence's replica holds it, with that epoch, and it has not run out, nothing is
        written and `LeaseLostError` is raised. Without one (tools, tests) no lease is
        looked at."""

    @abc.abstractmethod
    async def list_poison(self, trigger: str | None = None, limit: int = 100) -> list[PoisonEvent]:
        """Poison events, newest first."""

    @abc.abstractmethod
    async def checkpoint(self, trigger: str) -> Checkpoint | None: ...

    @abc.abstractmethod
    async def checkpoints(self) -> list[Checkpoint]: ...

    @abc.abstractmethod
    async def last_changes(self, trigger: str, record_ids: Sequence[str]) -> dict[str, RecordState]:
        """The change of the newest stored event per record id (those that have one)."""

    @abc.abstractmethod
    async def claim_due(self, endpoint: str, limit: int, lease: timedelta) -> list[Claim]:
        """Leases up to `limit` due deliveries of the endpoint, oldest first, for `lease`.

        A delivery whose lease expired is due again. For ordered endpoints a delivery is not
        due while an older delivery for the same record is pending or in flight."""

    @abc.abstractmethod
    async def record_outcomes(self, outcomes: Sequence[tuple[Claim, Outcome]]) -> list[bool]:
        """Applies each outcome whose claim still holds its lease, all in one transaction;
        per outcome, False when its claim lost the lease (nothing recorded for it). A
        finished one is stamped with the store's clock; a retry comes due its delay later."""

    async def record_outcome(self, claim: Claim, outcome: Outcome) -> bool:
        """One outcome: see `record_outcomes`."""
        [recorded] = await self.record_outcomes([(claim, outcome)])
        return recorded

    @abc.abstractmethod
    async def release(self, claims: Sequence[Claim]) -> None:
        """Gives unfinished claims back as due now, without counting an attempt (shutdown)."""

    @abc.abstractmethod
    async def expire_overdue(
        self, endpoint: str, max_age: timedelta, error: str, limit: int
    ) -> int:
        """Makes up to `limit` of the endpoint's pending deliveries (and in-flight ones whose
        lease ran out) dead with `error` when their max_age clock (`retry_since`) started
        `max_age` or longer ago, oldest first; returns how many. Not attempted first."""

    @abc.abstractmethod
    async def next_due_in(self, endpoint: str) -> timedelta | None:
        """How long from the store's now until the endpoint's earliest pending delivery or
        lease comes due: negative when it is overdue already; None when nothing is open."""

    @abc.abstractmethod
    async def list_deliveries(
        self,
        status: DeliveryStatus | None = None,
        endpoint: str | None = None,
        limit: int = 100,
    ) -> list[DeliveryRow]:
        """Newest first."""

    @abc.abstractmethod
    async def get_delivery(self, delivery_id: int) -> DeliveryRow | None: ...

    @abc.abstractmethod
    async def get_delivery_detail(self, delivery_id: int) -> DeliveryDetail | None:
        """The delivery, its stored webhook body and every attempt, oldest first."""

    @abc.abstractmethod
    async def redrive(self, delivery_id: int) -> bool:
        """Makes a dead delivery pending and due now; False if it is not dead or not there."""

    @abc.abstractmethod
    async def redrive_endpoint(self, endpoint: str) -> int:
        """Makes every dead delivery of the endpoint pending; returns how many."""

    @abc.abstractmethod
    async def recent_activity(self, within: timedelta, latest: int) -> RecentActivity:
        """Deliveries finished (delivered or dead) within `within` of the store's now:
        counted per endpoint and minute, and the `latest` newest of them with their events.
        Reads finished rows by their finish time through an index, never the whole table."""

    @abc.abstractmethod
    async def outbox_counts(self) -> dict[str, OutboxCounts]:
        """Pending (incl. in flight) and dead deliveries per endpoint."""

    @abc.abstractmethod
    async def prune(self, older_than: timedelta) -> int:
        """Deletes deliveries delivered `older_than` ago or longer, and events stored that
        long ago left with no delivery; returns how many deliveries it deleted."""

    @abc.abstractmethod
    async def requeue(self, selection: Selection) -> Requeued:
        """Resend and bulk redrive (`store.replay`): makes the selected finished deliveries
        whose status the selection takes pending and due now; pending ones are left alone."""

    @abc.abstractmethod
    async def rewind(
        self, trigger: str, checkpoint: Checkpoint, fence: Fence | None = None
    ) -> None:
        """Moves the trigger's checkpoint to an earlier point (an operator's rewind), the one
        move outside `ingest`; only while the trigger's source is stopped. A `fence` is
        checked as `ingest` checks it."""

    # Leadership (`store.leadership`): one lease per trigger, and the replicas' heartbeats.
    # Every time here is the store's clock; callers give durations.

    @abc.abstractmethod
    async def heartbeat(self, replica: str, forget_after: timedelta) -> None:
        """Marks the replica alive now (known from now on if it was not), and forgets the
        other replicas silent for longer than `forget_after`."""

    @abc.abstractmethod
    async def retire_replica(self, replica: str) -> None:
        """Forgets the replica at once (it is shutting down), so the others count it out."""

    @abc.abstractmethod
    async def replicas(self, seen_within: timedelta | None = None) -> list[Replica]:
        """The known replicas, by name; with `seen_within`, those heard from that recently."""

    @abc.abstractmethod
    async def acquire_lease(
        self, trigger: str, replica: str, lasting: timedelta
    ) -> TriggerLease | None:
        """Takes the trigger's lease for `lasting` if no other replica holds it (never held,
        run out or released), with the next epoch; `previous_ended_at` tells when the last
        one ended. A running lease under this replica's own name (left by an earlier process
        of it) is taken too, with the next epoch. None when another replica holds it."""

    @abc.abstractmethod
    async def renew_leases(
        self, replica: str, epochs: Mapping[str, int], lasting: timedelta
    ) -> list[TriggerLease]:
        """Extends to `lasting` from now, in one transaction, each of the given triggers'
        leases that this replica still holds with the given epoch and that has not run out;
        returns those renewed. One not returned is lost: its source must stop."""

    @abc.abstractmethod
    async def release_lease(self, trigger: str, fence: Fence) -> bool:
        """Hands the lease over: it runs out now, so any replica may take it at once (with
        the next epoch). False when the fence no longer held it."""

    @abc.abstractmethod
    async def leases(self) -> list[TriggerLease]:
        """Every trigger's lease, by trigger, `live` by the store's clock: who leads what."""

    @abc.abstractmethod
    def export_dump(self, batch_rows: int = BATCH_ROWS) -> AsyncGenerator[DumpBatch, None]:
        """Every row that matters, in batches of at most `batch_rows`, in the order
        `transfer` describes; read from one consistent view of the store, which other
        writers cannot change while it runs (the engine says how). Only reads."""

    @abc.abstractmethod
    async def import_dump(self, dump: AsyncIterable[DumpBatch]) -> None:
        """Writes an export into this store in one transaction: all of it, or (on any error,
        the source's included) nothing. Refuses (`transfer.TargetNotEmptyError`) before it
        reads the dump when the store holds any row already."""
