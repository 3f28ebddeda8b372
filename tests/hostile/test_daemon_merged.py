"""A merged change event (one event for many records, as Salesforce sends for identical
changes in one transaction): each webhook carries only its own record (issue 13, item 7)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.hostile.daemon_rig import daemon_rig

RECORDS = 200


async def test_each_webhook_of_a_merged_event_carries_only_its_own_record(
    tmp_path: Path,
) -> None:
    async with daemon_rig(tmp_path) as rig:
        # Identical records created in one call: the emulator merges them into one event.
        ids = await rig.org.create_many("Account", [{"Name": "Same"} for _ in range(RECORDS)])
        await rig.delivered(ids)
        others = set(ids)
        for receiver in (rig.alpha, rig.beta):
            for record_id in ids:
                [body] = receiver.of_record(record_id)
                text = json.dumps(body)
                foreign = [other for other in others - {record_id} if other in text]
                assert not foreign, (record_id, len(foreign), len(text))
        await rig.others_still_deliver()
