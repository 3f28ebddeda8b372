"""Stored positions across restarts after a back-fill (issue 13, item 1): a quiet period after
a fill must not leave a position that resumes at "new events only", and a fill that fails
on page k must not store a position past the pages it never read."""

from __future__ import annotations

from pathlib import Path

from sftriggerd_emulator.context import EmulatorSettings
from tests.hostile.daemon_rig import DaemonRig, daemon_rig

RESUME_WAIT_S = 20.0


async def expire_every_replay_id(rig: DaemonRig) -> None:
    """As if the daemon had been down longer than Salesforce keeps events."""
    streams = (await rig.control("channels"))["streams"]
    latest = streams["/data/ChangeEvents"]["latest_replay_id"]
    await rig.control("retention", {"drop_before_replay_id": latest + 1})


async def test_quiet_period_after_a_backfill_then_a_restart_loses_nothing(
    tmp_path: Path,
) -> None:
    async with daemon_rig(tmp_path) as rig:
        first = await rig.create("Account", {"Name": "Streamed"})
        await rig.delivered([first])
        assert await rig.stop() == 0

        missed = [await rig.create("Account", {"Name": f"Missed {i}"}) for i in range(2)]
        await expire_every_replay_id(rig)
        await rig.start()
        await rig.delivered(missed)  # back-filled by polling

        # A quiet Account channel (other triggers keep working), then a stop.
        await rig.others_still_deliver(accounts=False)
        assert await rig.stop() == 0

        while_down = [await rig.create("Account", {"Name": f"Down {i}"}) for i in range(3)]
        await rig.start()
        await rig.delivered(while_down, timeout_s=RESUME_WAIT_S)
        await rig.others_still_deliver()


async def test_a_fill_failing_on_page_k_then_a_restart_loses_nothing(tmp_path: Path) -> None:
    # Pages of 5 rows whatever the daemon asks for, so 12 missed records make 3 pages.
    settings = EmulatorSettings(cometd_timeout_ms=3000, query_batch_size=5)
    async with daemon_rig(tmp_path, emulator_settings=settings) as rig:
        first = await rig.create("Account", {"Name": "Streamed"})
        await rig.delivered([first])
        assert await rig.stop() == 0

        missed = await rig.org.create_many("Account", [{"Name": f"Missed {i}"} for i in range(12)])
        await expire_every_replay_id(rig)
        # Page 3 of the fill (its second `nextRecordsUrl`, `.../query/01g...-10`) fails, and
        # every later page too: only the fill reads more than one page.
        await rig.control(
            "fail",
            {"surface": "rest", "status": 500, "match": "/query/", "after": 2, "count": -1},
        )
        await rig.start(wait_ready=False)

        async def page_three_failed() -> bool:
            armed = (await rig.control("fail"))["armed"]
            return bool(armed.get("rest", {}).get("fail_given", 0) >= 1)

        await rig.eventually(page_three_failed, "the fill met the failing page")
        await rig.stop()
        await rig.control("fail", {"surface": "rest", "count": 0})

        await rig.start()
        await rig.delivered(missed, timeout_s=RESUME_WAIT_S)
        await rig.others_still_deliver()
