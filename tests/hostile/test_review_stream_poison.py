"""Hostile review: a change event whose names cannot go into a query (a gap notice naming a
hostile object, an enriched update naming a hostile record id) is poison, not a fault the
stream replays forever. Real emulator over HTTP, real SQLite store."""

from __future__ import annotations

import asyncio

from tests.hostile.resume_rig import CHANNEL, Harness, emulator_settings, harness, ids
from tests.salesforce_messages import cdc
from tests.support.sfclient import OrgClient

__all__ = ["emulator_settings", "harness"]


async def _after_hostile(harness: Harness, org: OrgClient, data: dict[str, object]) -> None:
    rig = await harness.start(enrich=True)
    await rig.connected()
    seen = await org.create("Account", {"Name": "Seen"})
    await rig.wait_events(1)
    await harness.control("publish", {"channel": CHANNEL, "data": data})
    after = await org.create("Account", {"Name": "After"})
    try:
        async with asyncio.timeout(10):
            while after not in ids(rig):
                await asyncio.sleep(0.02)
    finally:
        await rig.stop()
    assert ids(rig) == [seen, after]
    assert [p.trigger for p in await harness.store.list_poison()] == ["accounts"]


async def test_a_gap_notice_naming_a_hostile_object_is_poison(
    harness: Harness, org: OrgClient
) -> None:
    data = cdc("GAP_UPDATE", ["001EM0000000001YAA"])["data"]
    data["payload"]["ChangeEventHeader"]["entityName"] = "Account WHERE Id != null"
    await _after_hostile(harness, org, data)


async def test_an_enriched_update_naming_a_hostile_record_id_is_poison(
    harness: Harness, org: OrgClient
) -> None:
    data = cdc("UPDATE", ["../../limits"], Name="x")["data"]
    await _after_hostile(harness, org, data)


async def test_a_gap_notice_for_an_object_the_org_refuses_to_query_is_poison(
    harness: Harness, org: OrgClient
) -> None:
    """A valid name of an object the user cannot query (400 INVALID_TYPE, a permanent
    refusal): the stream moves past the notice instead of replaying it forever."""
    data = cdc("GAP_UPDATE", ["a09EM0000000001YAA"])["data"]
    data["payload"]["ChangeEventHeader"]["entityName"] = "Never_Written__c"
    await _after_hostile(harness, org, data)


async def test_a_record_id_with_a_lone_surrogate_is_poison(
    harness: Harness, org: OrgClient
) -> None:
    """JSON can carry "\\ud800"; no event id, store key or body can be made of it."""
    data = cdc("UPDATE", ["001EM\ud800000001YAA"], Name="x")["data"]
    await _after_hostile(harness, org, data)
