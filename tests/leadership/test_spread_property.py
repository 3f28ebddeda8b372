"""Spreading as a property: whatever the number of triggers and replicas, and whatever order
the replicas' rounds come in within each period (every replica has one round per
`ha.renew_every`), within a few periods every trigger is led by exactly one replica, none
leads more than its fair share, ceil(triggers / replicas), and it stays so."""

from __future__ import annotations

import asyncio
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sftriggerd.store.memory import MemoryStore
from tests.leadership.replicas import ReplicaRig, replica

# Periods within which the spread must be reached, and then kept.
SETTLE = 4
KEEP = 3


def spread_out(rigs: list[ReplicaRig], names: tuple[str, ...]) -> bool:
    led = [rig.leadership.led() for rig in rigs]
    share = math.ceil(len(names) / len(rigs))
    return sorted(t for each in led for t in each) == sorted(names) and all(
        len(each) <= share for each in led
    )


async def spread(triggers: int, periods: list[list[int]]) -> None:
    replicas = len(periods[0])
    store = MemoryStore()
    await store.open()
    names = tuple(f"t{n}" for n in range(triggers))
    rigs = [replica(store, f"r{n}", names) for n in range(replicas)]
    try:
        for order in periods[:SETTLE]:
            for n in order:
                await rigs[n].leadership.round()
        assert spread_out(rigs, names), [rig.leadership.led() for rig in rigs]
        before = [rig.leadership.led() for rig in rigs]
        for order in periods[SETTLE:]:
            for n in order:
                await rigs[n].leadership.round()
            assert [rig.leadership.led() for rig in rigs] == before  # no churn once spread
        leases = await store.leases()
        assert {(x.trigger, x.holder) for x in leases if x.live} == {
            (t, rig.name) for rig in rigs for t in rig.leadership.led()
        }
    finally:
        for rig in rigs:
            await rig.leadership.hand_over()
        await store.close()


@st.composite
def periods(draw: st.DrawFn) -> list[list[int]]:
    """For each period, the order of the replicas' rounds in it."""
    replicas = draw(st.integers(1, 4))
    order = st.permutations(range(replicas))
    return [list(draw(order)) for _ in range(SETTLE + KEEP)]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(triggers=st.integers(0, 8), periods=periods())
def test_every_trigger_led_once_and_no_replica_over_its_share(
    triggers: int, periods: list[list[int]]
) -> None:
    asyncio.run(spread(triggers, periods))
