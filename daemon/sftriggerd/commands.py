"""The store commands of the CLI: migrate, and deliveries list/redrive."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp

from .admin.api import delivery_json
from .config import Settings
from .errors import StoreError, UsageError
from .sources.position import PositionError, decode
from .store import store_from_settings
from .store.base import Store
from .store.records import DeliveryRow, DeliveryStatus
from .urls import store_url_shown

T = TypeVar("T")


async def with_store(
    settings: Settings, work: Callable[[Store], Awaitable[T]], create: bool = False
) -> T:
    """Inspection commands open an existing store only: a mistyped path is an error, not a
    new empty store that answers "no deliveries". Nor do they migrate it (`create`, for
    `migrate`, does): an older daemon may still run on it, and a store migrated under it
    refuses that daemon at its next start; an older schema is an error saying so."""
    store = store_from_settings(settings.store)
    await store.open(create=create, migrate=create)
    try:
        if not create:
            found, supported = await store.schema_version(), store.supported_schema_version()
            if found < supported:
                raise StoreError(
                    f"store schema {found} is older than this sftriggerd's ({supported}): back"
                    " the store up, then `sftriggerd migrate --config PATH` (or restart the"
                    " daemon at this version, which migrates it)"
                )
        return await work(store)
    finally:
        await store.close()


async def migrate(settings: Settings) -> str:
    version = await with_store(settings, lambda store: store.schema_version(), create=True)
    return f"store {store_url_shown(settings.store.url)}: schema at version {version}"


async def list_deliveries(
    settings: Settings,
    status: DeliveryStatus | None,
    endpoint: str | None,
    as_json: bool,
    limit: int,
) -> str:
    rows = await with_store(
        settings, lambda store: store.list_deliveries(status=status, endpoint=endpoint, limit=limit)
    )
    if as_json:
        return json.dumps([delivery_json(row) for row in rows], indent=2)
    return format_table(rows)


def format_table(rows: list[DeliveryRow]) -> str:
    header = ("ID", "STATUS", "ENDPOINT", "TRIGGER", "ATTEMPTS", "NEXT", "LAST", "EVENT")
    lines = [header]
    for row in rows:
        payload = delivery_json(row)
        lines.append(
            (
                str(row.id),
                row.status,
                row.endpoint,
                row.trigger,
                str(row.attempts),
                payload["next_attempt_at"] or "-",
                str(row.last_status or "") + (f" {row.last_error}" if row.last_error else "")
                or "-",
                row.event_id,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    rendered = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False))
        + "  "
        + line[-1]
        for line in lines
    ]
    return "\n".join(rendered) if rows else "no deliveries"


async def redrive(settings: Settings, delivery_id: int | None, endpoint: str | None) -> str:
    if delivery_id is not None:

        async def by_id(store: Store) -> str:
            row = await store.get_delivery(delivery_id)
            if row is None:
                raise UsageError(f"no delivery {delivery_id}")
            if not await store.redrive(delivery_id):
                raise UsageError(f"delivery {delivery_id} is {row.status}; only dead ones redrive")
            return f"delivery {delivery_id} is pending again"

        return await with_store(settings, by_id)
    if endpoint is None:
        raise UsageError("give --id ID, or --endpoint NAME --status dead")
    if endpoint not in {e.name for e in settings.endpoints}:
        raise UsageError(f"no endpoint named '{endpoint}' in the configuration")
    count = await with_store(settings, lambda store: store.redrive_endpoint(endpoint))
    return f"{count} dead deliveries of {endpoint} are pending again"


async def trigger_status(settings: Settings, as_json: bool) -> str:
    """From the running daemon's admin API when it answers, else from the store."""
    rows = await _live_triggers(settings)
    if rows is None:
        rows = await _stored_triggers(settings)
    if as_json:
        return json.dumps(rows, indent=2)
    header = ("TRIGGER", "MODE", "TRANSPORT", "STATE", "LAG", "CHECKPOINT")
    lines = [header] + [
        (
            str(row["name"]),
            str(row["mode"]),
            str(row.get("transport") or "-"),  # a daemon before transports lacks the key
            str(row["state"]),
            "-" if row["lag_s"] is None else f"{row['lag_s']:.0f}s",
            str(row["checkpoint"] or "-"),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


async def _live_triggers(settings: Settings) -> list[dict[str, Any]] | None:
    host = settings.server.host
    url = f"http://{'[' + host + ']' if ':' in host else host}:{settings.server.port}/api/triggers"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http,
            http.get(url) as response,
        ):
            if response.status != 200:
                return None
            rows: list[dict[str, Any]] = await response.json()
            return rows
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None


async def _stored_triggers(settings: Settings) -> list[dict[str, Any]]:
    saved = {c.trigger: c for c in await with_store(settings, lambda store: store.checkpoints())}
    now = datetime.now(UTC)
    rows = []
    for trigger in settings.triggers:
        checkpoint = saved.get(trigger.name)
        lag = (
            (now - checkpoint.updated_at).total_seconds()
            if checkpoint and checkpoint.updated_at
            else None
        )
        rows.append(
            {
                "name": trigger.name,
                "mode": trigger.mode,
                "mode_reason": "daemon not running: configured mode",
                "transport": trigger.transport,  # the resolved one; None when polling
                "state": "stopped",
                "checkpoint": _position_text(trigger.name, checkpoint.position)
                if checkpoint
                else None,
                "lag_s": lag,
                "last_error": None,
            }
        )
    return rows


def _position_text(trigger: str, position: dict[str, Any]) -> str:
    try:
        return str(decode(trigger, position))
    except PositionError:
        return json.dumps(position)
