"""The shared engine: PostgreSQL through psycopg 3 (async) and a connection pool, for several
replicas of the daemon on one database.

Time. Every time the store writes or compares (due, lease end, finished, created, pruned
before) is the database's clock (`sftriggerd_now()`, the server's `now()`), never a
replica's: replicas whose clocks disagree still agree on what is due and whose lease ran
out. Tests shift that clock (`clock_shift`) to move time ahead without waiting.

Durability. A commit returns after PostgreSQL has flushed it (synchronous_commit as the
server is configured; `on` by default), so `ingest` and `record_outcomes` keep what they
wrote when they return. Outcomes go together in one transaction per batch (`outcomes`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ...errors import StoreError
from ..activity import RecentActivity
from ..base import Store
from ..leadership import Fence, Replica, TriggerLease
from ..records import (
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
from ..replay import Requeued, Selection
from ..transfer import BATCH_ROWS, DumpBatch
from ..wake_ups import LeaseReleased, WakeUp
from . import (
    activity,
    claims,
    expiry,
    inspect,
    leadership,
    outcomes,
    prune,
    requeue,
    schema,
    transfer,
)
from . import ingest as ingesting
from .connecting import CONNECT_TIMEOUT, configure, connection_options
from .notify import wake_ups

T = TypeVar("T")
Work = Callable[[AsyncConnection[Any]], Awaitable[T]]

# Seconds to wait for a free connection of the pool.
POOL_TIMEOUT = 30.0


def describe(url: str) -> str:
    """Where the URL points, as `host:port/db` for messages: never its user info.

    Read as a URL first, so user info libpq would refuse (a NUL, say) still gives the place;
    libpq's own reading covers the rest (a host given as a query parameter)."""
    host: str | None = None
    port: str | None = None
    dbname = ""
    try:
        parts = urlsplit(url)
        host, dbname = parts.hostname, unquote(parts.path.lstrip("/"))
        port = str(parts.port) if parts.port else None
    except ValueError:  # a port out of range: the rest is still worth telling
        pass
    if not host:
        try:
            params = conninfo_to_dict(url)
        except (psycopg.Error, ValueError):  # anything libpq refuses
            return "(an unreadable postgresql:// URL)"
        host = str(params.get("host") or "") or None
        port = port or str(params.get("port") or "") or None
        dbname = dbname or str(params.get("dbname") or params.get("user") or "")
    host = host or os.environ.get("PGHOST") or "localhost"
    port = port or os.environ.get("PGPORT") or "5432"
    dbname = dbname or os.environ.get("PGDATABASE") or ""
    return f"{host}:{port}/{dbname}"


class PostgresStore(Store):
    def __init__(
        self,
        url: str,
        min_connections: int = 1,
        max_connections: int = 10,
        clock_shift: Callable[[], timedelta] | None = None,
        pool_timeout: float = POOL_TIMEOUT,
        prepared_statements: bool = True,
    ) -> None:
        """`clock_shift`, for tests: how far ahead of the database's clock the store's runs,
        read before each operation. `pool_timeout`: seconds an operation waits for a free
        connection of the pool before it fails. `prepared_statements`: `connecting`."""
        self.url = url
        self._clock_shift = clock_shift
        self.target = describe(url)
        self._min, self._max = min_connections, max_connections
        self._pool_timeout = pool_timeout
        self._options = connection_options(url, prepared_statements)
        self._pool: AsyncConnectionPool[AsyncConnection[Any]] | None = None
        self._outcomes = outcomes.GroupCommit(self._apply_outcomes)
        # Ingests of this process still running: see `_after_ingests`.
        self._ingesting: set[asyncio.Event] = set()

    def _error(self, doing: str, exc: Exception) -> StoreError:
        message = str(exc).strip() or type(exc).__name__
        try:
            password = conninfo_to_dict(self.url).get("password")
        except (psycopg.Error, ValueError):
            # libpq could not read the URL, and its message may quote the password back.
            return StoreError(f"postgresql store {self.target}: {doing}: the URL is not valid")
        secrets = {str(password)} if password else set()
        try:
            raw = urlsplit(self.url).password
        except ValueError:
            raw = None
        if raw:
            secrets |= {raw, unquote(raw)}
        for secret in sorted(secrets, key=len, reverse=True):
            message = message.replace(secret, "***")
        return StoreError(f"postgresql store {self.target}: {doing}: {message}")

    async def connect(self) -> AsyncConnection[Any]:
        """A connection of its own, outside the pool (migrations, listening)."""
        return await AsyncConnection.connect(self.url, **self._options)

    async def open(self, create: bool = True, migrate: bool = True) -> None:
        try:
            conn = await self.connect()
        except psycopg.Error as exc:
            raise self._error("cannot connect", exc) from exc
        try:
            if migrate:
                await schema.migrate(conn, create=create)
            else:
                await schema.check_schema(conn)
        except psycopg.Error as exc:
            doing = "cannot bring the schema up to date" if migrate else "cannot read the schema"
            raise self._error(doing, exc) from exc
        finally:
            await conn.close()
        if self._pool is not None:
            return
        pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            self.url,
            min_size=self._min,
            max_size=self._max,
            kwargs=self._options,
            # A connection the server ended meanwhile (a restart, pg_terminate_backend) is
            # found out and replaced before an operation gets it, rather than failing it.
            check=AsyncConnectionPool.check_connection,
            configure=configure,
            timeout=self._pool_timeout,
            name="sftriggerd-store",
            open=False,
        )
        try:
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT)
        except PoolTimeout as exc:
            await pool.close()
            raise self._error("cannot open the connection pool", exc) from exc
        self._pool = pool

    async def close(self) -> None:
        await self._outcomes.drain()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def _run(self, work: Work[T]) -> T:
        if self._pool is None:
            raise StoreError(f"postgresql store {self.target} is not open")
        try:
            async with self._pool.connection() as conn:
                await self._shift_clock(conn)
                return await work(conn)
        except PoolTimeout as exc:
            raise StoreError(
                f"postgresql store {self.target}: no connection of the pool free within"
                f" {self._pool_timeout:g}s (store.pool_size {self._max}): each one busy,"
                " or the server not answering"
            ) from exc
        except psycopg.Error as exc:
            raise self._error("failed", exc) from exc

    async def _after_ingests(self) -> None:
        """Waits for the ingests this process started before now. A claim, or a look at
        what is due next, then sees every ingest asked for before it, as on the SQLite
        engine, whose one thread runs them in turn: a dispatcher that finds nothing due
        sleeps until it is told of new work, and must not miss work stored just before it
        looked. Other replicas' ingests wake it by notification (`wake_ups`)."""
        for done in list(self._ingesting):
            await done.wait()

    async def _shift_clock(self, conn: AsyncConnection[Any]) -> None:
        if self._clock_shift is not None:
            shift = self._clock_shift()
            await conn.execute(
                "SELECT set_config('sftriggerd.clock_shift', %s, false)",
                (f"{shift.total_seconds()} seconds",),
            )

    def wake_ups(self) -> AsyncGenerator[WakeUp | LeaseReleased, None]:
        """Wake-ups from every replica's commits (`notify`), on a connection of their own."""
        return wake_ups(self.connect)

    async def schema_version(self) -> int:
        return await self._run(schema.schema_version)

    def supported_schema_version(self) -> int:
        return len(schema.migrations())

    async def ping(self) -> bool:
        try:
            await self._run(lambda conn: conn.execute("SELECT 1"))
        except StoreError:
            return False
        return True

    async def ingest(
        self,
        trigger: str,
        events: Sequence[NewEvent],
        checkpoint: Checkpoint | None,
        poison: Sequence[PoisonEvent] = (),
        fence: Fence | None = None,
    ) -> IngestResult:
        done = asyncio.Event()
        self._ingesting.add(done)
        try:
            return await self._run(
                lambda conn: ingesting.ingest(conn, trigger, events, checkpoint, poison, fence)
            )
        finally:
            self._ingesting.discard(done)
            done.set()

    async def list_poison(self, trigger: str | None = None, limit: int = 100) -> list[PoisonEvent]:
        return await self._run(lambda conn: inspect.list_poison(conn, trigger, limit))

    async def checkpoint(self, trigger: str) -> Checkpoint | None:
        found = await self._run(lambda conn: inspect.checkpoints(conn, trigger))
        return found[0] if found else None

    async def checkpoints(self) -> list[Checkpoint]:
        return await self._run(inspect.checkpoints)

    async def last_changes(self, trigger: str, record_ids: Sequence[str]) -> dict[str, RecordState]:
        return await self._run(lambda conn: inspect.last_changes(conn, trigger, record_ids))

    async def claim_due(self, endpoint: str, limit: int, lease: timedelta) -> list[Claim]:
        await self._after_ingests()
        return await self._run(lambda conn: claims.claim_due(conn, endpoint, limit, lease))

    async def record_outcomes(self, outcomes: Sequence[tuple[Claim, Outcome]]) -> list[bool]:
        return await self._outcomes.submit(outcomes)

    async def _apply_outcomes(self, items: Sequence[tuple[Claim, Outcome]]) -> list[bool]:
        return await self._run(lambda conn: outcomes.record_outcomes(conn, items))

    async def release(self, claims_: Sequence[Claim]) -> None:
        if claims_:
            await self._run(lambda conn: claims.release(conn, claims_))

    async def expire_overdue(
        self, endpoint: str, max_age: timedelta, error: str, limit: int
    ) -> int:
        return await self._run(
            lambda conn: expiry.expire_overdue(conn, endpoint, max_age, error, limit)
        )

    async def next_due_in(self, endpoint: str) -> timedelta | None:
        await self._after_ingests()
        return await self._run(lambda conn: inspect.next_due_in(conn, endpoint))

    async def recent_activity(self, within: timedelta, latest: int) -> RecentActivity:
        return await self._run(lambda conn: activity.recent_activity(conn, within, latest))

    async def list_deliveries(
        self,
        status: DeliveryStatus | None = None,
        endpoint: str | None = None,
        limit: int = 100,
    ) -> list[DeliveryRow]:
        return await self._run(lambda conn: inspect.list_deliveries(conn, status, endpoint, limit))

    async def get_delivery(self, delivery_id: int) -> DeliveryRow | None:
        return await self._run(lambda conn: inspect.get_delivery(conn, delivery_id))

    async def get_delivery_detail(self, delivery_id: int) -> DeliveryDetail | None:
        return await self._run(lambda conn: inspect.get_delivery_detail(conn, delivery_id))

    async def redrive(self, delivery_id: int) -> bool:
        return await self._run(lambda conn: requeue.redrive(conn, delivery_id))

    async def redrive_endpoint(self, endpoint: str) -> int:
        return await self._run(lambda conn: requeue.redrive_endpoint(conn, endpoint))

    async def outbox_counts(self) -> dict[str, OutboxCounts]:
        return await self._run(inspect.outbox_counts)

    async def prune(self, older_than: timedelta) -> int:
        return await self._run(lambda conn: prune.prune(conn, older_than))

    async def requeue(self, selection: Selection) -> Requeued:
        return await self._run(lambda conn: requeue.requeue(conn, selection))

    async def rewind(
        self, trigger: str, checkpoint: Checkpoint, fence: Fence | None = None
    ) -> None:
        await self._run(lambda conn: requeue.rewind(conn, trigger, checkpoint, fence))

    async def heartbeat(self, replica: str, forget_after: timedelta) -> None:
        await self._run(lambda conn: leadership.heartbeat(conn, replica, forget_after))

    async def retire_replica(self, replica: str) -> None:
        await self._run(lambda conn: leadership.retire(conn, replica))

    async def replicas(self, seen_within: timedelta | None = None) -> list[Replica]:
        return await self._run(lambda conn: leadership.replicas(conn, seen_within))

    async def acquire_lease(
        self, trigger: str, replica: str, lasting: timedelta
    ) -> TriggerLease | None:
        return await self._run(lambda conn: leadership.acquire(conn, trigger, replica, lasting))

    async def renew_leases(
        self, replica: str, epochs: Mapping[str, int], lasting: timedelta
    ) -> list[TriggerLease]:
        return await self._run(lambda conn: leadership.renew(conn, replica, epochs, lasting))

    async def release_lease(self, trigger: str, fence: Fence) -> bool:
        return await self._run(lambda conn: leadership.release(conn, trigger, fence))

    async def leases(self) -> list[TriggerLease]:
        return await self._run(leadership.leases)

    async def export_dump(self, batch_rows: int = BATCH_ROWS) -> AsyncGenerator[DumpBatch, None]:
        """One snapshot, the tables locked against writes meanwhile (`transfer`)."""
        if self._pool is None:
            raise StoreError(f"postgresql store {self.target} is not open")
        try:
            async for batch in transfer.export_dump(self.connect, self.target, batch_rows):
                yield batch
        except psycopg.Error as exc:
            raise self._error("export failed", exc) from exc

    async def import_dump(self, dump: AsyncIterable[DumpBatch]) -> None:
        if self._pool is None:
            raise StoreError(f"postgresql store {self.target} is not open")
        try:
            conn = await self.connect()
        except psycopg.Error as exc:
            raise self._error("cannot connect", exc) from exc
        try:
            await self._shift_clock(conn)
            await transfer.import_dump(conn, self.target, dump)
        except psycopg.Error as exc:
            raise self._error("import failed", exc) from exc
        finally:
            await conn.close()
