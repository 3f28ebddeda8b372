"""Hostile review of leadership (issue 15): shutdown releases only the leases this process
holds. A lease it acquired whose answer was lost (the connection dropped after the commit) is
its own by the new rule, yet a shutdown before its next round leaves it live under the name of
a replica that just retired: the followers, woken by nothing, wait for it to run out."""

from __future__ import annotations

from typing import Any

import pytest

from sftriggerd.errors import StoreError
from sftriggerd.store.base import Store
from sftriggerd.store.leadership import TriggerLease
from tests.leadership.replicas import replica


async def holders(store: Store) -> dict[str, tuple[str, bool]]:
    return {lease.trigger: (lease.holder, lease.live) for lease in await store.leases()}


async def test_shutdown_releases_a_lease_whose_acquire_answer_was_lost(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = replica(store, "a", ("t1", "t2"))
    b = replica(store, "b", ("t1", "t2"))
    await a.leadership.round()
    await b.leadership.round()
    await a.leadership.round()  # a sheds t2 (share 1)
    await b.leadership.round()  # b takes t2
    given = "t2"
    await b.leadership._release(given)  # handed back: a's next step takes it
    acquire = store.acquire_lease

    async def answer_lost(trigger: str, *args: Any, **kwargs: Any) -> TriggerLease | None:
        lease = await acquire(trigger, *args, **kwargs)
        raise StoreError("server closed the connection unexpectedly")
        return lease  # pragma: no cover

    monkeypatch.setattr(store, "acquire_lease", answer_lost)
    with pytest.raises(StoreError):
        await a.leadership._acquire(given)  # the round's own step, as `round()` runs it
    monkeypatch.setattr(store, "acquire_lease", acquire)
    assert (await holders(store))[given] == ("a", True)
    await a.leadership.hand_over()  # SIGTERM before a's next round
    try:
        assert not (await holders(store))[given][1], (
            "the retired replica's lease is still live: nobody reads the trigger until it runs out"
        )
    finally:
        await b.leadership.hand_over()
