"""The /_emulator/ admin calls over real HTTP: faults, delays, time, stamps, limits, stats."""

from __future__ import annotations

import time
from datetime import timedelta

import aiohttp

from sftriggerd_emulator.clock import format_datetime, parse_datetime
from sftriggerd_emulator.context import RecordChange
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient, control


async def test_fail_n_rest_calls_then_succeed(
    emulator: RunningEmulator, org: OrgClient, http: aiohttp.ClientSession
) -> None:
    armed = await control(
        http, emulator.url, "fail", {"surface": "rest", "count": 2, "status": 503}
    )
    assert armed.status == 200
    assert armed.body == {"armed": {"rest": {"fail_count": 2, "fail_status": 503}}}
    for _ in range(2):
        failed = await org.call("GET", "limits")
        assert failed.status == 503
        assert failed.body == [
            {"message": "Server is temporarily unavailable.", "errorCode": "SERVER_UNAVAILABLE"}
        ]
        assert "Sforce-Limit-Info" in failed.headers
    recovered = await org.call("GET", "limits")
    assert recovered.status == 200
    # Refused calls never reached the org, so they did not count against the allocation.
    assert recovered.body["DailyApiRequests"]["Remaining"] == 14999


async def test_fail_with_other_statuses_and_clearing(
    emulator: RunningEmulator, org: OrgClient, http: aiohttp.ClientSession
) -> None:
    await control(http, emulator.url, "fail", {"surface": "rest", "count": -1, "status": 500})
    for _ in range(3):
        answer = await org.call("GET", "limits")
        assert answer.status == 500
        assert answer.body[0]["errorCode"] == "UNKNOWN_EXCEPTION"
    cleared = await control(http, emulator.url, "fail", {"surface": "rest", "count": 0})
    assert cleared.body == {"armed": {}}
    assert (await org.call("GET", "limits")).status == 200


async def test_cometd_faults_reach_the_shared_registry(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await control(http, emulator.url, "fail", {"surface": "cometd", "count": 1, "status": 502})
    await control(http, emulator.url, "delay", {"surface": "cometd", "seconds": 1.5})
    faults = emulator.ctx.faults
    assert faults.take("cometd") == 502
    assert faults.take("cometd") is None
    assert faults.delay_s("cometd") == 1.5
    assert faults.delay_s("cometd") == 0.0


async def test_delay_holds_the_next_answers(
    emulator: RunningEmulator, org: OrgClient, http: aiohttp.ClientSession
) -> None:
    await control(http, emulator.url, "delay", {"surface": "rest", "seconds": 0.3, "count": 1})
    started = time.monotonic()
    assert (await org.call("GET", "limits")).status == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    await org.call("GET", "limits")
    assert time.monotonic() - started < 0.3


async def test_delay_on_the_token_endpoint(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await control(http, emulator.url, "delay", {"surface": "token", "seconds": 0.2})
    started = time.monotonic()
    await OrgClient.login(http, emulator.url)
    assert time.monotonic() - started >= 0.2


async def test_frozen_modstamp_makes_ties(
    emulator: RunningEmulator, org: OrgClient, http: aiohttp.ClientSession
) -> None:
    frozen = await control(http, emulator.url, "modstamp", {"freeze_at": "2030-01-02T03:04:05Z"})
    assert frozen.body == {"freeze_at": "2030-01-02T03:04:05.000+0000"}
    ids = [await org.create("Account", {"Name": f"tie {i}"}) for i in range(3)]
    await control(http, emulator.url, "clock", {"advance_s": 5})
    await org.call("PATCH", f"sobjects/Account/{ids[0]}", json={"Name": "changed"})
    answer = await org.query("SELECT Id, SystemModstamp, CreatedDate FROM Account ORDER BY Id")
    stamps = {(row["SystemModstamp"], row["CreatedDate"]) for row in answer.body["records"]}
    assert stamps == {("2030-01-02T03:04:05.000+0000", "2030-01-02T03:04:05.000+0000")}
    tied = await org.query(
        "SELECT Id FROM Account WHERE SystemModstamp = 2030-01-02T03:04:05Z ORDER BY Id"
    )
    assert [row["Id"] for row in tied.body["records"]] == ids
    thawed = await control(http, emulator.url, "modstamp", {"freeze_at": None})
    assert thawed.body == {"freeze_at": None}
    later = await org.create("Account", {"Name": "after"})
    assert (await org.get("Account", later)).body["SystemModstamp"] != frozen.body["freeze_at"]


async def test_late_commit_is_stamped_in_the_past_but_visible_now(
    emulator: RunningEmulator,
    org: OrgClient,
    http: aiohttp.ClientSession,
    record_changes: list[RecordChange],
) -> None:
    first = await org.create("Account", {"Name": "on time"})
    watermark = (await org.get("Account", first)).body["SystemModstamp"]
    past = parse_datetime(watermark) - timedelta(minutes=10)
    late = await control(
        http,
        emulator.url,
        "late-commit",
        {"object": "Account", "fields": {"Name": "late"}, "stamp": past.isoformat()},
    )
    assert late.status == 200
    late_id = late.body["id"]
    assert late.body["SystemModstamp"] == format_datetime(past)
    record = (await org.get("Account", late_id)).body
    assert record["CreatedDate"] == record["SystemModstamp"] == format_datetime(past)
    assert late_id > first  # ids still follow the order in which rows became visible
    literal = watermark.replace(".000+0000", "Z")
    after = await org.query(f"SELECT Id FROM Account WHERE SystemModstamp >= {literal}")
    assert [row["Id"] for row in after.body["records"]] == [first]  # a naive poller misses it
    assert record_changes[-1].record_ids == (late_id,)
    assert record_changes[-1].commit_time > past + timedelta(minutes=9)


async def test_late_commit_of_an_update(
    emulator: RunningEmulator, org: OrgClient, http: aiohttp.ClientSession
) -> None:
    record_id = await org.create("Account", {"Name": "before"})
    stamp = (await org.get("Account", record_id)).body["SystemModstamp"]
    past = format_datetime(parse_datetime(stamp) - timedelta(seconds=30))
    late = await control(
        http,
        emulator.url,
        "late-commit",
        {"object": "Account", "id": record_id, "fields": {"Name": "after"}, "stamp": past},
    )
    assert late.body == {"id": record_id, "SystemModstamp": past}
    record = (await org.get("Account", record_id)).body
    assert (record["Name"], record["SystemModstamp"]) == ("after", past)


async def test_late_commit_refuses_the_future(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    answer = await control(
        http,
        emulator.url,
        "late-commit",
        {"object": "Account", "fields": {}, "stamp": "2999-01-01T00:00:00Z"},
    )
    assert answer.status == 400
    assert answer.body == {"error": "'stamp' must not be in the future"}


async def test_expire_all_sessions_or_one(
    emulator: RunningEmulator, org: OrgClient, http: aiohttp.ClientSession
) -> None:
    other = await OrgClient.login(http, emulator.url)
    one = await control(http, emulator.url, "sessions/expire", {"access_token": other.token})
    assert one.body == {"expired": 1}
    assert (await other.call("GET", "limits")).status == 401
    assert (await org.call("GET", "limits")).status == 200
    everything = await control(http, emulator.url, "sessions/expire", {})
    assert everything.body == {"expired": 1}
    refused = await org.call("GET", "limits")
    assert refused.status == 401
    assert refused.body[0]["errorCode"] == "INVALID_SESSION_ID"


async def test_undelete_restores_the_record(
    emulator: RunningEmulator,
    org: OrgClient,
    http: aiohttp.ClientSession,
    record_changes: list[RecordChange],
) -> None:
    record_id = await org.create("Account", {"Name": "phoenix"})
    await org.call("DELETE", f"sobjects/Account/{record_id}")
    restored = await control(http, emulator.url, f"undelete/Account/{record_id}", {})
    assert restored.body == {"id": record_id, "success": True}
    assert (await org.get("Account", record_id)).body["IsDeleted"] is False
    assert record_changes[-1].change_type == "UNDELETE"
    assert record_changes[-1].change_origin == ""
    twice = await control(http, emulator.url, f"undelete/Account/{record_id}", {})
    assert twice.status == 400
    assert twice.body["errorCode"] == "UNDELETE_FAILED"


async def test_stats_count_what_happened(
    emulator: RunningEmulator, org: OrgClient, http: aiohttp.ClientSession
) -> None:
    await org.create("Account", {"Name": "a"})
    await org.query("SELECT Id FROM Account")
    await org.query("SELECT Id FROM Account")
    stats = await control(http, emulator.url, "stats")
    assert stats.body["logins"] == 1
    assert stats.body["queries"] == 2
    assert stats.body["api_calls"] == 3
    assert stats.body["api_usage"] == {
        "max": 15000,
        "used": 3,
        "remaining": 14997,
        "header": "alternate",
    }
    assert stats.body["live_sessions"] == 1


async def test_clock_moves_forward_only(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    # Answers carry milliseconds: compare at that precision.
    before = emulator.ctx.clock.now().replace(microsecond=0)
    moved = await control(http, emulator.url, "clock", {"advance_s": 3600})
    assert moved.body["offset_s"] == 3600
    assert parse_datetime(moved.body["now"]) - before >= timedelta(hours=1)
    backwards = await control(http, emulator.url, "clock", {"advance_s": -1})
    assert backwards.status == 400
    shown = await control(http, emulator.url, "clock")
    assert shown.body["offset_s"] == 3600


async def test_bad_control_requests(emulator: RunningEmulator, http: aiohttp.ClientSession) -> None:
    unknown_surface = await control(http, emulator.url, "fail", {"surface": "smtp"})
    assert unknown_surface.status == 400
    assert unknown_surface.body == {"error": "'surface' must be one of rest, cometd, token"}
    wrong_type = await control(http, emulator.url, "limits", {"max": "lots"})
    assert wrong_type.body == {"error": "'max' must be int"}
    missing = await control(http, emulator.url, "delay", {"surface": "rest"})
    assert missing.body == {"error": "'seconds' is required"}
    async with http.post(f"{emulator.url}/_emulator/fail", data=b"{nope") as response:
        assert response.status == 400
