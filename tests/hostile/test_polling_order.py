"""The poller against an org that returns tied rows in reversed Id order.

Salesforce gives no order to rows that share a SystemModstamp unless the query asks for one.
The poller pages by (SystemModstamp, Id), so it must also sort by both: with ties reversed by
the emulator, a query ordered by SystemModstamp alone reads a second's records backwards,
and its watermark (the last row of a page) points at the wrong record.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from sftriggerd.events.payload import format_time
from sftriggerd_emulator.context import EmulatorSettings
from tests.hostile.daemon_rig import daemon_rig
from tests.integration.polling_rig import PollingRig, make_rig
from tests.support.emulator import RunningEmulator, start_emulator
from tests.support.sfclient import OrgClient, control


@dataclass
class World:
    emulator: RunningEmulator
    http: aiohttp.ClientSession
    org: OrgClient
    rig: PollingRig

    async def control(self, path: str, body: dict[str, object]) -> None:
        answer = await control(self.http, self.emulator.url, path, body)
        assert answer.status == 200, answer.body


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """A real emulator over HTTP, a poller in pages of 10, a real SQLite store."""
    emulator, runner = await start_emulator(EmulatorSettings(state_dir=tmp_path / "org"))
    try:
        async with aiohttp.ClientSession() as http:
            org = await OrgClient.login(http, emulator.url)
            rig = await make_rig(emulator.url, http, tmp_path, batch_size=10)
            try:
                yield World(emulator, http, org, rig)
            finally:
                await rig.store.close()
    finally:
        await runner.cleanup()


async def test_reversed_ties_are_delivered_once_in_stamp_and_id_order(
    world: World,
) -> None:
    rig, org = world.rig, world.org
    await world.control("query", {"ties": "reversed"})
    first_second = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=40)
    await world.control("modstamp", {"freeze_at": format_time(first_second)})
    first = await org.create_many("Account", [{"Name": f"A{i}"} for i in range(25)])
    second_second = first_second + timedelta(seconds=10)
    await world.control("modstamp", {"freeze_at": format_time(second_second)})
    second = await org.create_many("Account", [{"Name": f"B{i}"} for i in range(12)])
    await world.control("modstamp", {"freeze_at": None})

    await rig.source.poll_once()  # pages of 10 cut through both seconds' ties

    expected = [("created", record_id) for record_id in sorted(first) + sorted(second)]
    assert rig.changes() == expected
    assert rig.source.watermark is not None
    assert rig.source.watermark.record_id == max(second)
    # Further cycles (each with its look-back) find nothing new and move nothing back.
    for _ in range(2):
        assert await rig.source.poll_once() == 0
    assert rig.changes() == expected
    deliveries = await rig.store.list_deliveries(limit=1000)
    assert len(deliveries) == len({row.event_id for row in deliveries}) == 37


async def test_a_tie_that_grows_between_polls_is_read_once(
    world: World,
) -> None:
    rig, org = world.rig, world.org
    await world.control("query", {"ties": "reversed"})
    tie = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    await world.control("modstamp", {"freeze_at": format_time(tie)})
    before = await org.create_many("Account", [{"Name": f"A{i}"} for i in range(15)])
    await rig.source.poll_once()
    # More records in the very same second, after the watermark reached its last Id.
    after = await org.create_many("Account", [{"Name": f"B{i}"} for i in range(15)])
    await world.control("modstamp", {"freeze_at": None})
    await rig.source.poll_once()
    assert [record for _, record in rig.changes()] == sorted(before) + sorted(after)


async def test_the_running_daemon_delivers_reversed_ties_in_order(tmp_path: Path) -> None:
    """The same through `sftriggerd run`: one delivery at a time to alpha, so alpha sees the
    order the poller stored them in."""
    async with daemon_rig(tmp_path, alpha_options={"max_in_flight": 1}) as rig:
        await rig.control("query", {"ties": "reversed"})
        second = datetime.now(UTC).replace(microsecond=0)
        await rig.control("modstamp", {"freeze_at": format_time(second)})
        leads = await rig.org.create_many(
            "Lead", [{"LastName": f"Tied {i}", "Company": "Acme"} for i in range(12)]
        )
        await rig.control("modstamp", {"freeze_at": None})
        await rig.delivered(leads)
        order = [d.record_id for d in rig.alpha.deliveries if d.body["trigger"] == "leads"]
        assert order == sorted(leads)
