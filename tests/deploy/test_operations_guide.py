"""docs/operations.md keeps up with what it describes: every metric sftriggerd exposes, every
file it points operators to, the connection counts of the PostgreSQL section, and its role,
created on a real PostgreSQL server as the guide writes it."""

from __future__ import annotations

import re
import uuid
from typing import LiteralString, cast

import psycopg
import pytest

from sftriggerd.config.settings import StoreSettings
from sftriggerd.metrics import Metrics
from tests.deploy.manifests import KUBERNETES, ROOT, by_kind

GUIDE = (ROOT / "docs" / "operations.md").read_text()


def test_every_metric_is_explained() -> None:
    for family in Metrics().registry.collect():
        name = f"{family.name}_total" if family.type == "counter" else family.name
        assert f"`{name}`" in GUIDE, name


def test_every_file_it_names_exists() -> None:
    named = set(
        re.findall(r"`((?:systemd|deploy|docs|config)/[\w./-]+|Dockerfile|\.dockerignore)`", GUIDE)
    )
    assert len(named) >= 10
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing


# --- Running on PostgreSQL --------------------------------------------------------------------

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def test_the_connection_counts_are_the_settings_and_the_manifest() -> None:
    prose = " ".join(GUIDE.split())  # as read, whatever the line breaks
    per_replica = StoreSettings().pool_size + 1  # the pool, and the connection that listens
    assert f"up to {per_replica} per replica" in prose
    spec = by_kind(KUBERNETES / "postgresql")["Deployment"]["spec"]
    pods = spec["replicas"] + spec["strategy"]["rollingUpdate"]["maxSurge"]
    assert f"up to {pods} x {per_replica} = {pods * per_replica}" in prose


def guide_role_sql() -> tuple[list[str], list[str]]:
    """The statements that create the role, split where the guide connects to the new database:
    (run on the server's default database, run in the new one)."""
    section = GUIDE.split("### The database and its role", 1)[1]
    block = section.split("```sql\n", 1)[1].split("```", 1)[0]
    before, after = block.split("\\connect sftriggerd\n")
    return _statements(before), _statements(after)


def _statements(text: str) -> list[str]:
    lines = [line.split("--", 1)[0].strip() for line in text.splitlines()]
    return [s.strip() for s in " ".join(lines).split(";") if s.strip()]


def test_the_guides_role_owns_its_schema_and_nothing_else() -> None:
    # Role names are global to the server: a unique one, like the database, dropped after.
    name = f"guide_{uuid.uuid4().hex[:12]}"
    on_server, in_database = guide_role_sql()
    assert len(on_server) == 4 and len(in_database) == 3
    database_url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        try:
            for statement in on_server:
                admin.execute(_named(statement, name))
            with psycopg.connect(database_url, autocommit=True) as setup:
                for statement in in_database:
                    setup.execute(_named(statement, name))
            _check_the_role(database_url.replace("postgres@", f"{name}@"), name)
        finally:
            admin.execute(_named("DROP DATABASE IF EXISTS sftriggerd WITH (FORCE)", name))
            admin.execute(_named("DROP ROLE IF EXISTS sftriggerd", name))


def _named(statement: str, name: str) -> LiteralString:
    # The guide's names are fixed words, replaced by the test's unique name: no user input.
    return cast(LiteralString, statement.replace("sftriggerd", name))


def _check_the_role(url: str, name: str) -> None:
    with psycopg.connect(url, autocommit=True) as store:
        store.execute("CREATE TABLE checkpoints (trigger text PRIMARY KEY)")
        row = store.execute(
            "SELECT schemaname FROM pg_tables WHERE tablename = 'checkpoints'"
        ).fetchone()
        assert row == (name,), "the store's tables land in its own schema"
        store.execute("SELECT pg_advisory_xact_lock(15)")
        store.execute("LISTEN sftriggerd_due")
        store.execute("NOTIFY sftriggerd_due, 'crm'")
        assert [n.payload for n in store.notifies(timeout=5, stop_after=1)] == ["crm"]
        powers = store.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert powers == (False, False, False)
        for forbidden in ("CREATE TABLE public.elsewhere (x int)", "CREATE SCHEMA another"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                store.execute(cast(LiteralString, forbidden))
