"""Review of issue 15: a change whose record id is kilobytes long (a hostile or broken peer;
Salesforce's own are 18 characters) used to stop a trigger on PostgreSQL, whose indexes
refuse an entry over about 2700 bytes: every retry of the batch failed the same way. End to
end here: the real emulator's change events (one rewritten on its way to the daemon), the
streaming source, ingest, and a real PostgreSQL store."""

from __future__ import annotations

import random
import string
from datetime import timedelta
from pathlib import Path

import aiohttp

from sftriggerd.ingest import ID_LIMIT_BYTES
from sftriggerd.store.postgres import PostgresStore
from tests.hostile.stream_tamper import Message, Tamper, hostile_emulator, tamper
from tests.integration.streaming_rig import StreamingRig, make_streaming_rig
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient

__all__ = ["hostile_emulator", "tamper"]  # the tamper rig's fixtures

# Random, so PostgreSQL cannot compress it under its index limit.
HUGE_ID = "001" + "".join(random.Random(15).choices(string.ascii_letters, k=3000))


def huge_record_id(message: Message) -> Message:
    """The change of the Account named `huge` names a 3 KB record id instead of its own."""
    payload = message["data"].get("payload", {})
    if payload.get("Name") == "huge":
        payload["ChangeEventHeader"]["recordIds"] = [HUGE_ID]
    return message


async def delivered_ids(rig: StreamingRig) -> list[str]:
    """The record ids of the deliveries due to the rig's endpoint (claimed, so each once)."""
    claims = await rig.store.claim_due("hook", 100, timedelta(seconds=30))
    return [claim.body.split(b'"record_id":"', 1)[1].split(b'"', 1)[0].decode() for claim in claims]


async def test_a_3kb_record_id_is_poison_and_the_trigger_goes_on_on_postgresql(
    hostile_emulator: RunningEmulator,
    tamper: Tamper,
    http: aiohttp.ClientSession,
    tmp_path: Path,
    postgres_url: str,
) -> None:
    tamper.rewrite_data = huge_record_id
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        rig = await make_streaming_rig(hostile_emulator.url, http, tmp_path, store=store)
        rig.start()
        await rig.connected()
        org = await OrgClient.login(http, hostile_emulator.url)
        first = await org.create("Account", {"Name": "first"})
        await org.create("Account", {"Name": "huge"})
        second = await org.create("Account", {"Name": "second"})
        await rig.wait_events(3)  # every event handed to ingest, the poisoned one too
        assert sorted(await delivered_ids(rig)) == sorted([first, second])
        [poison] = await store.list_poison("accounts")
        assert f"ids longer than {ID_LIMIT_BYTES} bytes are not stored" in poison.reason
        assert HUGE_ID in poison.message
        huge_replay = next(
            m["data"]["event"]["replayId"]
            for m in tamper.rewritten
            if m["data"]["payload"].get("Name") == "huge"
        )
        saved = await store.checkpoint("accounts")
        assert saved is not None and saved.position["replay_id"] >= huge_replay
        assert not rig.task.done()  # type: ignore[union-attr]

        # The next change is stored as usual ...
        after = await org.create("Account", {"Name": "after"})
        await rig.wait_events(4)
        assert await delivered_ids(rig) == [after]
        await rig.stop()

        # ... and a restart on the same store replays nothing and goes on.
        again = await make_streaming_rig(hostile_emulator.url, http, tmp_path, store=store)
        again.start()
        await again.connected()
        last = await org.create("Account", {"Name": "last"})
        await again.wait_events(1)
        assert [e.record_id for e in again.ingest.new] == [last]
        assert await delivered_ids(again) == [last]
        assert len(await store.list_poison("accounts")) == 1
        await again.stop()
    finally:
        await store.close()
