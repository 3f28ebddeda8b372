"""`triggers rewind` with no daemon answering: the command takes the trigger's lease for
itself, so no replica elsewhere starts the trigger's source between its check and its move,
and the move is fenced; the lease is released at the end, failed or not. On every engine."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from sftriggerd import replay
from sftriggerd.cli_replay import cli_replica_name, rewind_under_lease
from sftriggerd.config import parse_settings
from sftriggerd.config.settings import TriggerSettings
from sftriggerd.errors import StoreError, UsageError
from sftriggerd.store.base import Store
from sftriggerd.store.leadership import TriggerLease
from sftriggerd.store.records import Checkpoint
from tests.admin.test_replay_api import CONFIG

LASTING = timedelta(seconds=15)
POSITION = {"replay_id": 90, "channel": "/data/AccountChangeEvent"}


def accounts() -> TriggerSettings:
    return replay.trigger_named(parse_settings(CONFIG, environ={}), "accounts")


async def replay_id(store: Store) -> object:
    saved = await store.checkpoint("accounts")
    return None if saved is None else saved.position["replay_id"]


async def lease_of(store: Store) -> TriggerLease:
    return {lease.trigger: lease for lease in await store.leases()}["accounts"]


async def test_no_replica_can_take_the_trigger_while_the_command_moves_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.ingest("accounts", [], Checkpoint(trigger="accounts", position=POSITION))
    taken_meanwhile: list[TriggerLease | None] = []
    rewind = store.rewind

    async def racing(*args: Any, **kwargs: Any) -> None:
        # A replica elsewhere starts its round between the command's check and its move.
        taken_meanwhile.append(await store.acquire_lease("accounts", "replica-7", LASTING))
        await rewind(*args, **kwargs)

    monkeypatch.setattr(store, "rewind", racing)
    done = await rewind_under_lease(store, accounts(), "12", False, LASTING, cli_replica_name())
    assert taken_meanwhile == [None]
    assert done.position["replay_id"] == 12 and await replay_id(store) == 12
    # Released at once: the replica takes the trigger at its next round, under a new epoch.
    released = await lease_of(store)
    assert released.holder == cli_replica_name() and not released.live
    taken = await store.acquire_lease("accounts", "replica-7", LASTING)
    assert taken is not None and taken.epoch == released.epoch + 1


async def test_a_failed_move_still_releases_the_lease(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.ingest("accounts", [], Checkpoint(trigger="accounts", position=POSITION))

    async def failing(*args: Any, **kwargs: Any) -> None:
        raise StoreError("the disk is full")

    # Refused before the store is touched (outside retention): nothing is left held.
    with pytest.raises(UsageError, match="retention"):
        await rewind_under_lease(store, accounts(), "4d", False, LASTING, "cli-x-1")
    assert not (await lease_of(store)).live
    monkeypatch.setattr(store, "rewind", failing)
    with pytest.raises(StoreError, match="disk is full"):
        await rewind_under_lease(store, accounts(), "12", True, LASTING, "cli-x-2")
    assert not (await lease_of(store)).live
    assert await store.acquire_lease("accounts", "replica-7", LASTING) is not None
    assert await replay_id(store) == 90


async def test_refused_while_another_replica_holds_the_lease(store: Store) -> None:
    await store.ingest("accounts", [], Checkpoint(trigger="accounts", position=POSITION))
    held = await store.acquire_lease("accounts", "replica-7", timedelta(hours=1))
    assert held is not None
    with pytest.raises(UsageError, match="is being read by replica replica-7"):
        await rewind_under_lease(store, accounts(), "12", True, LASTING, "cli-x-1")
    assert await replay_id(store) == 90
    assert await lease_of(store) == held
