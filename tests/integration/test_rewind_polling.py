"""A polled trigger rewound to a time, against the emulator over HTTP and a real SQLite store:
the poller reads from there again, stores nothing twice, and `resend` queues the stored
changes from that time again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from sftriggerd import replay
from sftriggerd.events.payload import format_time
from sftriggerd.store.records import Delivered
from tests.integration.polling_rig import make_rig
from tests.integration.test_polling_positions import freeze, stored
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient


async def test_a_polled_trigger_rewound_reads_again_and_resends_only_when_asked(
    emulator: RunningEmulator, http: aiohttp.ClientSession, org: OrgClient, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    await freeze(http, emulator.url, now - timedelta(days=5))  # past streaming retention
    old = await org.create_many("Account", [{"Name": f"Old {i}"} for i in range(2)])
    await freeze(http, emulator.url, now - timedelta(hours=1))
    newer = await org.create_many("Account", [{"Name": f"New {i}"} for i in range(2)])
    await freeze(http, emulator.url, None)
    rig = await make_rig(emulator.url, http, tmp_path)
    assert await rig.source.poll_once() == 4
    claims = await rig.store.claim_due("hook", 10, timedelta(seconds=30))
    for claim in claims:
        await rig.store.record_outcome(claim, Delivered(status=200))
    reached = await stored(rig)

    to = format_time(now - timedelta(hours=2))
    done = await replay.rewind(rig.store, rig.source.trigger, to, False, datetime.now(UTC))
    assert done.resent is None and (await stored(rig)).time == now - timedelta(hours=2)
    again = await make_rig(emulator.url, http, tmp_path, store=rig.store)  # the next start
    assert await again.source.poll_once() == 0  # read again, stored once
    back = await stored(again)  # the position is back where it was; its floor is the point
    assert (back.time, back.record_id, back.floor) == (
        reached.time,
        reached.record_id,
        now - timedelta(hours=2),
    )
    assert await rig.store.list_deliveries(status="pending") == []

    to = format_time(now - timedelta(days=6))  # any time, for a polled trigger
    done = await replay.rewind(rig.store, rig.source.trigger, to, True, datetime.now(UTC))
    assert done.resent is not None and done.resent.requeued == 4
    last = await make_rig(emulator.url, http, tmp_path, store=rig.store)
    assert await last.source.poll_once() == 0
    pending = await rig.store.list_deliveries(status="pending")
    assert {row.event_id for row in pending} == {e.id for e in rig.ingest.new}
    assert {e.record_id for e in rig.ingest.new} == set(old + newer)
    await rig.store.close()
