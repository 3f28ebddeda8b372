"""The PostgreSQL engine's schema: migrations, their lock, and the invariants the database
itself enforces."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from urllib.parse import quote

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sftriggerd.config.settings import StoreSettings
from sftriggerd.errors import StoreError
from sftriggerd.store import store_from_settings
from sftriggerd.store.postgres import PostgresStore
from sftriggerd.store.postgres.engine import describe
from sftriggerd.store.postgres.schema import migrations
from sftriggerd.urls import store_url_shown
from tests.support.postgres import SERVER

from .test_store_contract import checkpoint, event

LEASE = timedelta(seconds=30)


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def sql(url: str, statement: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(statement.encode(), params)
        return cursor.fetchall() if cursor.description else []


async def test_the_url_names_the_postgresql_engine(postgres_url: str) -> None:
    store = store_from_settings(StoreSettings(url=postgres_url))
    assert isinstance(store, PostgresStore)
    await store.open(create=False)
    try:
        assert await store.schema_version() == len(migrations())
        assert await store.ping()
    finally:
        await store.close()


async def test_migrating_a_new_database_from_several_processes_at_once_runs_once(
    empty_postgres_url: str,
) -> None:
    script = (
        "import asyncio, sys\n"
        "from sftriggerd.store.postgres import PostgresStore\n"
        "async def main() -> None:\n"
        "    store = PostgresStore(sys.argv[1])\n"
        "    await store.open()\n"
        "    print(await store.schema_version())\n"
        "    await store.close()\n"
        "asyncio.run(main())\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, empty_postgres_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    answers = [process.communicate(timeout=60) for process in processes]
    supported = len(migrations())
    assert [
        (p.returncode, out.strip()) for p, (out, _) in zip(processes, answers, strict=True)
    ] == [(0, str(supported))] * 4, [err for _, err in answers]
    versions = sql(empty_postgres_url, "SELECT version FROM sftriggerd_schema ORDER BY version")
    assert versions == [(n,) for n in range(1, supported + 1)]


async def test_a_schema_newer_than_the_code_is_refused(postgres_url: str) -> None:
    sql(
        postgres_url,
        "INSERT INTO sftriggerd_schema (version) VALUES (%s)",
        (len(migrations()) + 1,),
    )
    with pytest.raises(StoreError, match="newer than this sftriggerd supports"):
        await PostgresStore(postgres_url).open()


async def test_opening_an_empty_database_without_create_is_refused(
    empty_postgres_url: str,
) -> None:
    with pytest.raises(StoreError, match="holds no sftriggerd store"):
        await PostgresStore(empty_postgres_url).open(create=False)
    assert sql(empty_postgres_url, "SELECT to_regclass('deliveries')") == [(None,)]


async def test_a_server_that_cannot_be_reached_is_named_without_the_password() -> None:
    url = "postgresql://postgres:s3cret-pw@127.0.0.1:1/nowhere"
    with pytest.raises(StoreError) as raised:
        await PostgresStore(url).open()
    assert "127.0.0.1:1/nowhere" in str(raised.value)
    assert "s3cret-pw" not in str(raised.value)


async def test_a_missing_database_is_named() -> None:
    url = f"{SERVER}/sftriggerd_no_such_database"
    with pytest.raises(StoreError, match="sftriggerd_no_such_database"):
        await PostgresStore(url).open()


async def test_the_database_refuses_a_second_in_flight_change_of_one_record(
    pg: PostgresStore, postgres_url: str
) -> None:
    await pg.ingest("t", [event(1), event(2), event(3, record="other")], checkpoint(3))
    claimed = await pg.claim_due("hook", 10, LEASE)
    assert [claim.event_id for claim in claimed] == ["evt_1", "evt_3"]
    with pytest.raises(psycopg.errors.UniqueViolation, match="one_in_flight_per_record"):
        sql(
            postgres_url,
            "UPDATE deliveries SET status = 'in_flight', lease_token = 'x'"
            " WHERE id = (SELECT max(id) FROM deliveries WHERE order_key = %s)",
            ("t\x1f001A",),
        )


async def test_the_database_refuses_rows_that_break_the_invariants(
    pg: PostgresStore, postgres_url: str
) -> None:
    await pg.ingest("t", [event(1)], checkpoint(1))
    for broken in (
        "UPDATE deliveries SET finished_at = now()",  # pending, yet finished
        "UPDATE deliveries SET status = 'delivered'",  # finished, without a time
        "UPDATE deliveries SET status = 'sent'",
        "UPDATE deliveries SET lease_token = 'x'",  # a lease while pending
        "UPDATE deliveries SET next_attempt_at = NULL",  # open, never due
    ):
        with pytest.raises(psycopg.errors.CheckViolation):
            sql(postgres_url, broken)
    [row] = await pg.list_deliveries()
    assert row.status == "pending"


@given(password=st.text(min_size=1, max_size=30), user=st.text(min_size=1, max_size=10))
def test_where_a_url_points_is_told_without_its_user_info(password: str, user: str) -> None:
    url = f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@db.example:6543/app"
    assert describe(url) == "db.example:6543/app"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres:Hunter2%zz@127.0.0.1:5432/d",  # libpq refuses the encoding
        "postgresql://postgres:top secret@127.0.0.1:5432/d",  # libpq refuses the space
        "postgresql://127.0.0.1:1/d?user=postgres&password=topsecret",  # nothing listens
    ],
)
async def test_no_store_error_quotes_the_password_back(url: str) -> None:
    with pytest.raises(StoreError) as raised:
        await PostgresStore(url).open()
    for secret in ("Hunter2", "top secret", "topsecret"):
        assert secret not in str(raised.value)


def test_a_store_url_is_shown_without_any_password() -> None:
    shown = store_url_shown("postgresql://127.0.0.1:5432/db?user=postgres&password=topsecret")
    assert shown == "postgresql://127.0.0.1:5432/db"
    assert store_url_shown("postgresql://u:pw@h/db") == "postgresql://h:5432/db"
    assert store_url_shown("sqlite:////var/lib/x.db") == "sqlite:////var/lib/x.db"


async def test_a_database_at_migration_4_gains_trace_contexts_and_old_claims_carry_none(
    empty_postgres_url: str,
) -> None:
    with psycopg.connect(empty_postgres_url, autocommit=True) as conn:
        conn.execute(
            b"CREATE TABLE sftriggerd_schema (version integer PRIMARY KEY,"
            b" applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for version, step in enumerate(migrations()[:4], start=1):
            conn.execute(step.encode())
            conn.execute("INSERT INTO sftriggerd_schema (version) VALUES (%s)", (version,))
        for n in (1, 2):
            conn.execute(
                "INSERT INTO events (trigger, event_id, occurred_at, body)"
                " VALUES ('t', %s, now(), '{}')",
                (f"evt_old_{n}",),
            )
        conn.execute(
            "INSERT INTO deliveries (event_seq, endpoint, status, next_attempt_at)"
            " SELECT seq, 'hook', 'pending', now() - interval '1 second' FROM events"
        )
    store = PostgresStore(empty_postgres_url)
    await store.open()
    try:
        assert await store.schema_version() == len(migrations()) == 5
        claims = await store.claim_due("hook", 10, LEASE)
        assert [(c.event_id, c.trace_context) for c in claims] == [
            ("evt_old_1", None),
            ("evt_old_2", None),
        ]
        traced = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        await store.ingest("t", [replace(event(3), trace_context=traced)], checkpoint(3))
        [claim] = await store.claim_due("hook", 10, LEASE)
        assert (claim.event_id, claim.trace_context) == ("evt_3", traced)
    finally:
        await store.close()
    with psycopg.connect(empty_postgres_url) as conn:
        found = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'deliveries_dead_finished'"
        ).fetchone()
    # The last hour's dead rows, by finish time.
    assert found is not None and "WHERE (status = 'dead'::text)" in found[0]
    with psycopg.connect(empty_postgres_url) as conn:
        overdue = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'deliveries_overdue'"
        ).fetchone()
    # The expiry sweep's open deliveries, by endpoint and when their max_age clock started.
    assert overdue is not None and "(endpoint, retry_since, id)" in overdue[0], overdue
    assert "WHERE ((finished_at IS NULL) AND (retry_since IS NOT NULL))" in overdue[0], overdue
