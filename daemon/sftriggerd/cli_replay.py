"""The CLI's resend, bulk redrive and rewind: `deliveries resend`, `deliveries redrive
--since/--until`, `triggers rewind`. They change an existing store (never create one).

A rewind while the daemon runs must go through its admin API, which stops the trigger's
source around the change (written to the store directly, it would be overwritten by the
source's next batch): when the configured admin address answers, `triggers rewind` asks it
to, with the configured admin token."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeAlias
from urllib.parse import quote

import aiohttp

from . import commands, replay
from .commands_deliveries import delivery_id_arg
from .config import Settings, load_settings
from .config.settings import TriggerSettings
from .errors import SftriggerdError, StoreError, UsageError
from .events.payload import format_time
from .store.base import Store
from .store.replay import Requeued, Selection

Actions: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
_TIME_HELP = "a time with its zone (2026-12-01T10:00:00Z) or a duration ago (2h)"


def add_delivery_commands(actions: Actions, redrive: argparse.ArgumentParser) -> None:
    _time_range(redrive)
    redrive.set_defaults(handler=_redrive)
    resend = actions.add_parser(
        "resend", help="send deliveries again, delivered ones too (same webhook-id)"
    )
    resend.add_argument("--config", type=Path, required=True, metavar="PATH")
    resend.add_argument("--id", type=delivery_id_arg)
    resend.add_argument("--endpoint")
    resend.add_argument("--status", choices=["dead", "delivered"])
    _time_range(resend)
    resend.set_defaults(handler=_resend)


def add_trigger_commands(actions: Actions) -> None:
    rewind = actions.add_parser("rewind", help="re-read a trigger from a time or a replay id")
    rewind.add_argument("name", metavar="NAME")
    rewind.add_argument("--to", required=True, metavar="TIME|REPLAY_ID")
    rewind.add_argument(
        "--resend", action="store_true", help="also send the stored events from there again"
    )
    rewind.add_argument("--config", type=Path, required=True, metavar="PATH")
    rewind.set_defaults(handler=_rewind)


def _time_range(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", metavar="TIME", help=f"made at or after: {_TIME_HELP}")
    parser.add_argument("--until", metavar="TIME", help=f"made before: {_TIME_HELP}")


def _by_id_or_endpoint(args: argparse.Namespace, operation: str) -> None:
    if (args.id is None) == (args.endpoint is None):
        raise UsageError(f"{operation}: give either --id ID or --endpoint NAME")
    if args.id is not None and (args.since, args.until, args.status) != (None, None, None):
        raise UsageError(f"{operation} --id takes no --status, --since or --until")


def _redrive(args: argparse.Namespace) -> int:
    _by_id_or_endpoint(args, "redrive")
    if args.endpoint is not None and args.status != "dead":
        raise UsageError("redrive by endpoint needs --status dead")
    settings = load_settings(args.config)
    if args.id is not None:
        print(asyncio.run(commands.redrive(settings, args.id, None)))
        return 0
    print(asyncio.run(_bulk(settings, "redrive", args)))
    return 0


def _resend(args: argparse.Namespace) -> int:
    _by_id_or_endpoint(args, "resend")
    settings = load_settings(args.config)
    if args.id is not None:
        print(asyncio.run(_resend_one(settings, args.id)))
        return 0
    print(asyncio.run(_bulk(settings, "resend", args)))
    return 0


async def _bulk(settings: Settings, operation: replay.Operation, args: argparse.Namespace) -> str:
    now = datetime.now(UTC)
    selection = replay.bulk_selection(
        settings, operation, args.endpoint, args.status, args.since, args.until, now
    )
    done = await commands.with_store(settings, lambda store: store.requeue(selection))
    what = "dead deliveries" if operation == "redrive" else "deliveries"
    return replay.requeued_text(done, f"{what} of {selection.endpoint} are")


async def _resend_one(settings: Settings, delivery_id: int) -> str:
    async def work(store: Store) -> str:
        done = await store.requeue(Selection(delivery_id=delivery_id))
        if done.requeued:
            return f"delivery {delivery_id} is pending again"
        if done.already_pending:
            return f"delivery {delivery_id} is already pending: nothing to do"
        raise UsageError(f"no delivery {delivery_id}")

    return await commands.with_store(settings, work)


def _rewind(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    trigger = replay.trigger_named(settings, args.name)
    through_daemon = asyncio.run(_rewind_running(settings, trigger.name, args.to, args.resend))
    if through_daemon is not None:
        print(through_daemon)
        return 0

    async def work(store: Store) -> replay.RewindDone:
        return await rewind_under_lease(
            store, trigger, args.to, args.resend, settings.ha.takeover, cli_replica_name()
        )

    print(replay.rewind_text(asyncio.run(commands.with_store(settings, work))))
    return 0


def cli_replica_name() -> str:
    """The name this command's lease is held under: its own, never a daemon's."""
    return f"cli-{socket.gethostname()}-{os.getpid()}"


async def rewind_under_lease(
    store: Store,
    trigger: TriggerSettings,
    to: str,
    resend: bool,
    lasting: timedelta,
    replica: str,
) -> replay.RewindDone:
    """The rewind with no daemon answering here, under the trigger's lease taken for the
    command: another replica, elsewhere, may run. Holding the lease keeps any replica from
    starting the trigger's source meanwhile (its next write would undo the move), and the
    move is fenced by it; it is released at the end, failed or not, so a replica takes the
    trigger at its next round (unreleased, after `lasting`)."""
    lease = await store.acquire_lease(trigger.name, replica, lasting)
    if lease is None:
        await _refuse_led(store, trigger.name)
        raise UsageError(f"trigger {trigger.name}: its lease was taken and given up meanwhile")
    try:
        return await replay.rewind(store, trigger, to, resend, datetime.now(UTC), fence=lease.fence)
    finally:
        with contextlib.suppress(StoreError):  # unreleased, it runs out on its own
            await store.release_lease(trigger.name, lease.fence)


async def _refuse_led(store: Store, trigger: str) -> None:
    """A replica that holds the trigger's lease may be reading it: moving the checkpoint
    under its running source would be lost at its next write. (No daemon answered here, but
    another replica, elsewhere, may run.)"""
    for lease in await store.leases():
        if lease.trigger == trigger and lease.live:
            raise UsageError(
                f"trigger {trigger} is being read by replica {lease.holder} (its lease runs"
                f" until {format_time(lease.expires_at)}): rewind through that replica's"
                " admin API, or stop it first"
            )


async def _rewind_running(settings: Settings, name: str, to: str, resend: bool) -> str | None:
    """The running daemon's answer to the rewind; None when no daemon answers."""
    server = settings.server
    host = f"[{server.host}]" if ":" in server.host else server.host
    url = f"http://{host}:{server.port}/api/triggers/{quote(name, safe='')}/rewind"
    headers = {"Content-Type": "application/json"}
    if server.admin_token is not None:
        headers["Authorization"] = f"Bearer {server.admin_token.get_secret_value()}"
    body = json.dumps({"to": to, "resend": resend})
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http,
            http.post(url, data=body, headers=headers) as response,
        ):
            answer = await response.json(content_type=None)
    except (aiohttp.ClientConnectionError, TimeoutError):
        return None  # nothing listens there: the daemon is stopped
    except (aiohttp.ClientError, ValueError) as exc:
        raise SftriggerdError(f"the daemon at {server.listen} answered oddly: {exc}") from exc
    if response.status != 200 or not isinstance(answer, dict):
        problem = answer.get("error") if isinstance(answer, dict) else None
        raise UsageError(f"the running daemon refused: {problem or response.status}")
    resent = answer.get("resent")
    done = replay.RewindDone(
        trigger=name,
        point=str(answer.get("to")),
        position=answer.get("position") or {},
        resent=Requeued(resent["requeued"], resent["already_pending"]) if resent else None,
    )
    return replay.rewind_text(done) + " (through the running daemon, which re-reads at once)"
