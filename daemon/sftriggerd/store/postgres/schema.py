"""The PostgreSQL schema: versioned SQL files (`migrations/`), applied once however many
replicas start together."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

from psycopg import AsyncConnection

from ...errors import StoreError

# The advisory lock every replica takes before it reads or moves the schema version: those
# starting together queue on it, the first migrates, the others find the work done.
MIGRATION_LOCK = 0x7366_7472_6967_0001
_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migrations() -> list[str]:
    """The SQL of every version, in order: element n-1 brings the schema to version n."""
    found: dict[int, str] = {}
    for entry in resources.files(__package__ + ".migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            version = int(match.group(1))
            if version in found:  # two files of one number: one would be skipped silently
                raise StoreError(f"two postgresql migrations are numbered {version}")
            found[version] = entry.read_text(encoding="utf-8")
    if sorted(found) != list(range(1, len(found) + 1)):
        raise StoreError(f"postgresql migrations are not numbered 1..n: {sorted(found)}")
    return [found[version] for version in sorted(found)]


async def schema_version(conn: AsyncConnection[Any]) -> int:
    exists = await conn.execute("SELECT to_regclass('sftriggerd_schema') IS NOT NULL")
    row = await exists.fetchone()
    if row is None or not row[0]:
        return 0
    cursor = await conn.execute("SELECT coalesce(max(version), 0) FROM sftriggerd_schema")
    found = await cursor.fetchone()
    return int(found[0]) if found else 0


async def check_schema(conn: AsyncConnection[Any]) -> int:
    """The schema version as found, for an open that must not migrate: refused as `migrate`
    refuses it when it is newer than this code knows or missing, left as it is when older."""
    supported = len(migrations())
    current = await schema_version(conn)
    _refuse_newer(current, supported)
    if current == 0:
        raise StoreError("the database holds no sftriggerd store (`sftriggerd migrate`)")
    return current


def _refuse_newer(current: int, supported: int) -> None:
    if current > supported:
        raise StoreError(
            f"store schema {current} is newer than this sftriggerd supports"
            f" ({supported}); upgrade sftriggerd"
        )


async def migrate(conn: AsyncConnection[Any], create: bool = True) -> int:
    """Brings the schema to the current version in one transaction, under the migration
    lock. A schema newer than this code knows is refused rather than written to by older
    SQL; with `create=False` a database without the schema is an error."""
    steps = migrations()
    supported = len(steps)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        current = await schema_version(conn)
        _refuse_newer(current, supported)
        if current == 0 and not create:
            raise StoreError("the database holds no sftriggerd store (`sftriggerd migrate`)")
        if current == supported:
            return supported
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS sftriggerd_schema ("
            " version integer PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for version in range(current + 1, supported + 1):
            # bytes: the file's SQL is trusted text of the package, several statements long,
            # which psycopg runs as one simple query when it has no parameters.
            await conn.execute(steps[version - 1].encode())
            await conn.execute("INSERT INTO sftriggerd_schema (version) VALUES (%s)", (version,))
    return supported
