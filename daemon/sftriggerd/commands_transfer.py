"""`sftriggerd migrate-store --from URL --to URL`: moves a whole store to another, typically
a SQLite file to a PostgreSQL database when one process is no longer enough.

The source is opened as it is (never created) and only read, under its engine's lock
against writers; the target is brought to the current schema, must hold no rows, and takes
everything in one transaction (`store.transfer`). Stop the daemon first: an SQLite file
stays locked while it is read, so a daemon left running cannot write to it meanwhile (its
writes fail), and a PostgreSQL source's writers wait until the copy ends.
"""

from __future__ import annotations

import json
from contextlib import aclosing
from pathlib import Path

import pydantic

from .config.settings import StoreSettings
from .errors import UsageError
from .store import store_from_settings
from .store.base import Store
from .store.postgres.engine import describe
from .store.transfer import BATCH_ROWS, TransferCounts, counted
from .urls import store_url_shown


def store_settings(option: str, url: str) -> StoreSettings:
    try:
        return StoreSettings(url=url)
    except pydantic.ValidationError as exc:
        reasons = "; ".join(str(error["msg"]) for error in exc.errors())
        raise UsageError(f"{option} {store_url_shown(url)}: {reasons}") from exc


def same_store(source: StoreSettings, target: StoreSettings) -> bool:
    """Whether two URLs name one store: one file (however its path is written), or one
    database on one server (whoever logs in)."""
    if source.engine != target.engine:
        return False
    if source.engine == "sqlite":
        return Path(source.sqlite_path).resolve() == Path(target.sqlite_path).resolve()
    where = describe(source.url)
    # Two URLs libpq cannot read name no place: opening them says what is wrong.
    return not where.startswith("(") and where == describe(target.url)


async def migrate_store(
    source_url: str, target_url: str, as_json: bool, batch_rows: int = BATCH_ROWS
) -> str:
    source_settings = store_settings("--from", source_url)
    target_settings = store_settings("--to", target_url)
    shown_source, shown_target = store_url_shown(source_url), store_url_shown(target_url)
    if same_store(source_settings, target_settings):
        raise UsageError(f"--from and --to name the same store ({shown_target})")
    if source_settings.engine == "sqlite" and not Path(source_settings.sqlite_path).is_file():
        raise UsageError(f"--from {shown_source}: no such file; the source must exist")
    source = store_from_settings(source_settings)
    await source.open(create=False)
    try:
        target = store_from_settings(target_settings)
        await target.open(create=True)
        try:
            counts = await copy(source, target, batch_rows)
            version = await target.schema_version()
        finally:
            await target.close()
    finally:
        await source.close()
    return summary(shown_source, shown_target, version, counts, as_json)


async def copy(source: Store, target: Store, batch_rows: int = BATCH_ROWS) -> TransferCounts:
    """Every row of `source` into the empty `target`, in one target transaction."""
    counts = TransferCounts()
    async with aclosing(source.export_dump(batch_rows)) as dump:
        await target.import_dump(counted(dump, counts))
    return counts


def summary(source: str, target: str, version: int, counts: TransferCounts, as_json: bool) -> str:
    if as_json:
        moved = {"from": source, "to": target, "schema_version": version}
        return json.dumps(moved | counts.as_json(), indent=2)
    deliveries = (
        f"pending {counts.pending} (of which {counts.in_flight_made_pending} were in flight),"
        f" delivered {counts.delivered}, dead {counts.dead}"
    )
    rows = [
        ("checkpoints", str(counts.checkpoints), ""),
        ("events", str(counts.events), ""),
        ("deliveries", str(counts.deliveries), deliveries),
        ("attempts", str(counts.attempts), ""),
        ("poison", str(counts.poison), ""),
    ]
    lines = [f"moved {source} to {target} (schema version {version})"]
    lines += [f"  {name:<12} {count:>9}  {note}".rstrip() for name, count, note in rows]
    lines.append(f"next: set store.url to {target} and start the daemon there")
    return "\n".join(lines)
