"""Schema 8's partial indexes against every delivery state: a schema-7 file written by the
previous code (its migrations are the first seven, unchanged) with pending, retrying,
in-flight (lease live and lapsed), dead, redriven and delivered rows, over two endpoints and
one no longer configured, is upgraded; then each read that the new indexes serve (the
in-flight listing, the expiry sweep, the outbox counts; and schema 9's, the last hour's
read of dead rows) must answer what a full scan of the table answers (`NOT INDEXED`), and
the claim must still take every due delivery. A hypothesis test does the same over
arbitrary rows and times."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sftriggerd.errors import StoreError
from sftriggerd.store.records import Checkpoint, Claim, Dead, Delivered, NewEvent, Outcome, Retry
from sftriggerd.store.sqlite import SqliteStore, expiry, ops
from sftriggerd.store.sqlite.activity import recent_activity
from sftriggerd.store.sqlite.migrations import MIGRATIONS
from tests.support.clock import FrozenClock

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
ENDPOINTS = ("a", "b", "gone")
STATUSES = ("pending", "in_flight", "delivered", "dead")


def event(n: int) -> NewEvent:
    return NewEvent(
        event_id=f"e{n}",
        record_id=f"r{n}",
        occurred_at=T0,
        body=b"{}",
        endpoints=ENDPOINTS,
        ordered_endpoints=frozenset(),
        order_key=None,
    )


def full_scan(db: sqlite3.Connection, where: str, params: tuple[object, ...] = ()) -> list[int]:
    sql = f"SELECT id FROM deliveries NOT INDEXED WHERE {where} ORDER BY id"
    return [row[0] for row in db.execute(sql, params)]


def listed_ids(db: sqlite3.Connection, status: str | None, endpoint: str | None) -> list[int]:
    return sorted(row.id for row in ops.list_deliveries(db, status, endpoint, 100_000))  # type: ignore[arg-type]


def scanned_counts(db: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    counts: dict[str, tuple[int, int]] = {}
    for endpoint, status, n in db.execute(
        "SELECT endpoint, status, count(*) FROM deliveries NOT INDEXED GROUP BY endpoint, status"
    ):
        pending, dead = counts.get(endpoint, (0, 0))
        if status in ("pending", "in_flight"):
            pending += n
        elif status == "dead":
            dead += n
        counts[endpoint] = (pending, dead)
    return {name: found for name, found in counts.items() if found != (0, 0)}


def assert_reads_match_a_full_scan(db: sqlite3.Connection) -> None:
    for status in (None, *STATUSES):
        for endpoint in (None, *ENDPOINTS):
            clauses, params = ["1"], []
            if status is not None:
                clauses.append("status = ?")
                params.append(status)
            if endpoint is not None:
                clauses.append("endpoint = ?")
                params.append(endpoint)
            expected = full_scan(db, " AND ".join(clauses), tuple(params))
            assert listed_ids(db, status, endpoint) == expected, (status, endpoint)
    counted = {k: (v.pending, v.dead) for k, v in ops.outbox_counts(db).items()}
    assert counted == scanned_counts(db)
    for since in (0.0, 5.0, T0.timestamp(), (T0 + timedelta(hours=2)).timestamp()):
        assert activity_read(db, since) == activity_by_scan(db, since), since


def activity_read(db: sqlite3.Connection, since: float) -> tuple[object, list[int]]:
    """The status page's last hour (each status through its index by finish time)."""
    now = datetime.fromtimestamp(since, UTC) + timedelta(hours=1)
    found = recent_activity(db, now, datetime.fromtimestamp(since, UTC), 20)
    counts = {(t.endpoint, t.minute, t.delivered, t.dead) for t in found.tallies}
    return counts, [d.id for d in found.latest]


def activity_by_scan(db: sqlite3.Connection, since: float) -> tuple[object, list[int]]:
    finished = "status IN ('delivered', 'dead') AND finished_at >= ?"
    counts = set(
        db.execute(
            "SELECT endpoint, CAST(finished_at / 60 AS INTEGER) AS minute,"
            " sum(status = 'delivered'), sum(status = 'dead')"
            f" FROM deliveries NOT INDEXED WHERE {finished} GROUP BY endpoint, minute",
            (since,),
        )
    )
    newest = db.execute(
        f"SELECT id FROM deliveries NOT INDEXED WHERE {finished}"
        " ORDER BY finished_at DESC, id DESC LIMIT 20",
        (since,),
    )
    return counts, [row[0] for row in newest]


def overdue_by_scan(db: sqlite3.Connection, endpoint: str, cutoff: float, now: float) -> list[int]:
    return full_scan(
        db,
        "endpoint = ? AND finished_at IS NULL AND retry_since <= ?"
        " AND (status = 'pending' OR (status = 'in_flight' AND next_attempt_at <= ?))",
        (endpoint, cutoff, now),
    )


def newly_dead(before: set[int], db: sqlite3.Connection) -> list[int]:
    return sorted(set(full_scan(db, "status = 'dead'")) - before)


async def write_schema_7_store(path: Path, clock: FrozenClock) -> None:
    """The previous release's store: schema 7, every delivery state on every endpoint.

    Written by today's code (whose ingest also writes the trace context of schema 9), then
    taken back to schema 7: what later schemas added (schema 8's two indexes, schema 9's
    column and index) dropped, which leaves the rows as the previous release wrote them."""
    store = SqliteStore(path, clock=clock)
    await store.open()
    try:
        await store.ingest("t", [event(n) for n in range(40)], Checkpoint("t", {"n": 40}))
        for endpoint in ENDPOINTS:
            claims = await store.claim_due(endpoint, 30, LEASE)
            outcomes: list[tuple[Claim, Outcome]] = [
                (claims[0], Delivered(status=200)),
                (claims[1], Delivered(status=204)),
                (claims[2], Dead(status=410, error="gone")),
                (claims[3], Dead(status=410, error="gone")),
                *(
                    (c, Retry(status=500, error="x", delay=timedelta(hours=1)))
                    for c in claims[4:10]
                ),
            ]
            await store.record_outcomes(outcomes)
            await store.release(claims[10:14])  # given back: pending again
            # claims[14:30] stay in flight; their lease runs out after 30 s.
        clock.now += timedelta(hours=2)
        assert await store.redrive_endpoint("b") == 2  # redriven: max_age counts anew
        await store.claim_due("a", 2, timedelta(days=30))  # a lease still live at the end
    finally:
        await store.close()
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("DROP INDEX deliveries_in_flight")
        db.execute("DROP INDEX deliveries_overdue")
        db.execute("DROP INDEX deliveries_dead_finished")
        db.execute("ALTER TABLE events DROP COLUMN trace_context")
        db.execute("DELETE FROM schema_version WHERE version > 7")
        assert ops.schema_version(db) == 7


async def claims_take_every_due_delivery(path: Path, copy: Path, clock: FrozenClock) -> None:
    """On a copy of the upgraded file: every due pending delivery and every lapsed lease of
    each endpoint is claimed, and nothing else."""
    shutil.copy(path, copy)
    now = clock.now.timestamp()
    with closing(sqlite3.connect(copy)) as db:
        due = {
            endpoint: full_scan(
                db,
                "endpoint = ? AND finished_at IS NULL AND next_attempt_at <= ?",
                (endpoint, now),
            )
            for endpoint in ENDPOINTS
        }
    store = SqliteStore(copy, clock=clock)
    await store.open()
    try:
        for endpoint in ENDPOINTS:
            claimed = await store.claim_due(endpoint, 1000, LEASE)
            assert sorted(c.delivery_id for c in claimed) == due[endpoint], endpoint
    finally:
        await store.close()


async def test_a_schema_7_store_upgraded_reads_claims_and_expires_every_delivery(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    clock = FrozenClock(T0)
    await write_schema_7_store(path, clock)
    clock.now += timedelta(hours=1)
    store = SqliteStore(path, clock=clock)
    await store.open()
    try:
        assert await store.schema_version() == len(MIGRATIONS) >= 8  # the current one
        with closing(sqlite3.connect(path, isolation_level=None)) as db:
            assert_reads_match_a_full_scan(db)
            assert len(listed_ids(db, "in_flight", None)) == 3 * 16 + 2
        await claims_take_every_due_delivery(path, tmp_path / "copy.db", clock)
        with closing(sqlite3.connect(path, isolation_level=None)) as db:
            # Expire at a cut-off between the first writes and the redrive: the redriven
            # ones stay, the lapsed leases and the pending ones go, the live lease stays.
            now, cutoff = clock.now, T0 + timedelta(hours=1)
            for endpoint in ENDPOINTS:
                dead_before = set(full_scan(db, "status = 'dead'"))
                expected = overdue_by_scan(db, endpoint, cutoff.timestamp(), now.timestamp())
                assert expected, endpoint
                swept = 0
                while (n := expiry.expire_overdue(db, endpoint, cutoff, "old", now, 7)) > 0:
                    swept += n
                assert newly_dead(dead_before, db) == expected
                assert swept == len(expected)
            assert_reads_match_a_full_scan(db)
            assert full_scan(db, "endpoint = 'b' AND status = 'pending'")  # the redriven
            assert len(full_scan(db, "status = 'in_flight'")) == 2  # the live lease
    finally:
        await store.close()


async def test_the_release_before_schema_8_refuses_a_newer_store_and_leaves_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "store.db"
    store = SqliteStore(path)
    await store.open()
    await store.ingest("t", [event(1)], Checkpoint("t", {"n": 1}))
    await store.close()
    monkeypatch.setattr(ops, "MIGRATIONS", MIGRATIONS[:7])
    older = SqliteStore(path)
    newer = f"schema {len(MIGRATIONS)} is newer than this sftriggerd supports \\(7\\)"
    with pytest.raises(StoreError, match=newer):
        await older.open()
    monkeypatch.undo()
    again = SqliteStore(path)
    await again.open()
    try:
        assert len(await again.list_deliveries(status="pending")) == 3
    finally:
        await again.close()


# Arbitrary rows that satisfy the table's constraints: an open row has a due time, a lease
# exactly in flight, finished_at exactly when finished; times on a small grid, so ties with
# the cut-off and "now" happen.
rows = st.lists(
    st.tuples(
        st.sampled_from(ENDPOINTS),
        st.sampled_from(STATUSES),
        st.integers(0, 10),  # retry_since
        st.integers(0, 10),  # next_attempt_at
        st.integers(0, 10),  # finished_at
    ),
    max_size=60,
)


def insert(db: sqlite3.Connection, drawn: list[tuple[str, str, int, int, int]]) -> None:
    db.execute(
        "INSERT INTO events (trigger, event_id, occurred_at, body, created_at)"
        " VALUES ('t', 'e', 0, x'', 0)"
    )
    for n, (endpoint, status, since, due, finished) in enumerate(drawn):
        is_open = status in ("pending", "in_flight")
        db.execute(
            "INSERT INTO deliveries (event_seq, endpoint, status, next_attempt_at, lease_token,"
            " created_at, retry_since, finished_at) VALUES (1, ?, ?, ?, ?, 0, ?, ?)",
            (
                endpoint,
                status,
                due if is_open else None,
                f"lease{n}" if status == "in_flight" else None,
                since,
                None if is_open else finished,
            ),
        )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows, st.integers(-1, 11), st.integers(0, 11), st.integers(1, 5))
def test_the_indexed_reads_answer_what_a_full_scan_answers(
    drawn: list[tuple[str, str, int, int, int]], cutoff: int, now: int, batch: int
) -> None:
    with (
        tempfile.TemporaryDirectory() as folder,
        closing(sqlite3.connect(Path(folder) / "s.db", isolation_level=None)) as db,
    ):
        assert ops.migrate(db) == len(MIGRATIONS) >= 8
        insert(db, drawn)
        assert_reads_match_a_full_scan(db)
        at_cutoff, at_now = datetime.fromtimestamp(cutoff, UTC), datetime.fromtimestamp(now, UTC)
        for endpoint in ENDPOINTS:
            dead_before = set(full_scan(db, "status = 'dead'"))
            expected = overdue_by_scan(db, endpoint, cutoff, now)
            while expiry.expire_overdue(db, endpoint, at_cutoff, "old", at_now, batch) > 0:
                pass
            assert newly_dead(dead_before, db) == expected
        assert_reads_match_a_full_scan(db)
