"""query, queryAll, their pages, and getUpdated/getDeleted over real HTTP."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from sftriggerd_emulator.clock import format_datetime, parse_datetime
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import SF_DATETIME, OrgClient, control


async def _pages(org: OrgClient, soql: str, batch_size: int) -> list[dict[str, Any]]:
    first = await org.query(soql, batch_size=batch_size)
    assert first.status == 200, first.body
    pages = [first.body]
    while not pages[-1]["done"]:
        more = await org.call("GET", pages[-1]["nextRecordsUrl"])
        assert more.status == 200, more.body
        pages.append(more.body)
    return pages


async def test_query_pages_follow_batch_size(org: OrgClient) -> None:
    ids = await org.create_many("Account", [{"Name": f"acct {i:02d}"} for i in range(25)])
    pages = await _pages(org, "SELECT Id, Name FROM Account ORDER BY Name", batch_size=4)
    assert [len(page["records"]) for page in pages] == [4, 4, 4, 4, 4, 4, 1]
    assert all(page["totalSize"] == 25 for page in pages)
    assert [page["done"] for page in pages] == [False] * 6 + [True]
    assert re.fullmatch(r"/services/data/v60\.0/query/01g\w{15}-4", pages[0]["nextRecordsUrl"])
    assert pages[1]["nextRecordsUrl"].endswith("-8")
    records = [record for page in pages for record in page["records"]]
    assert [record["Id"] for record in records] == ids
    assert records[0] == {
        "attributes": {"type": "Account", "url": f"/services/data/v60.0/sobjects/Account/{ids[0]}"},
        "Id": ids[0],
        "Name": "acct 00",
    }


async def test_default_batch_is_2000(org: OrgClient) -> None:
    for start in range(0, 2001, 1000):
        await org.create_many("Account", [{"Name": "x"} for _ in range(min(1000, 2001 - start))])
    pages = await _pages(org, "SELECT Id FROM Account", batch_size=5000)
    assert [len(page["records"]) for page in pages] == [2000, 1]
    unasked = await org.query("SELECT Id FROM Account")
    assert len(unasked.body["records"]) == 2000
    assert unasked.body["totalSize"] == 2001


async def test_records_without_id_in_select_keep_their_url(org: OrgClient) -> None:
    record_id = await org.create("Account", {"Name": "Acme"})
    answer = await org.query("SELECT Name FROM Account")
    assert answer.body["records"] == [
        {
            "attributes": {
                "type": "Account",
                "url": f"/services/data/v60.0/sobjects/Account/{record_id}",
            },
            "Name": "Acme",
        }
    ]


async def test_unknown_locator_is_invalid(org: OrgClient) -> None:
    answer = await org.call("GET", "query/01gEM0000000099AAA-2000")
    assert answer.status == 400
    assert answer.body == [
        {"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}
    ]


async def test_query_all_sees_the_recycle_bin(org: OrgClient) -> None:
    kept = await org.create("Account", {"Name": "kept"})
    gone = await org.create("Account", {"Name": "gone"})
    await org.call("DELETE", f"sobjects/Account/{gone}")
    soql = "SELECT Id, Name, IsDeleted FROM Account ORDER BY Name"
    live = await org.query(soql)
    assert [(r["Id"], r["IsDeleted"]) for r in live.body["records"]] == [(kept, False)]
    everything = await org.query(soql, include_deleted=True)
    assert [(r["Id"], r["IsDeleted"]) for r in everything.body["records"]] == [
        (gone, True),
        (kept, False),
    ]
    only_deleted = await org.query(
        "SELECT Id FROM Account WHERE IsDeleted = true", include_deleted=True
    )
    assert [r["Id"] for r in only_deleted.body["records"]] == [gone]


async def test_watermark_query_with_datetime_literal(org: OrgClient) -> None:
    record_id = await org.create("Account", {"Name": "a"})
    stamp = (await org.get("Account", record_id)).body["SystemModstamp"]
    earlier = format_datetime(parse_datetime(stamp) - timedelta(seconds=1))
    literal = earlier.replace(".000+0000", "Z")
    answer = await org.query(
        f"SELECT Id, SystemModstamp FROM Account WHERE SystemModstamp > {literal}"
        " ORDER BY SystemModstamp, Id"
    )
    assert answer.body["records"][0]["SystemModstamp"] == stamp
    assert SF_DATETIME.fullmatch(answer.body["records"][0]["SystemModstamp"])
    quoted = await org.query(f"SELECT Id FROM Account WHERE SystemModstamp > '{literal}'")
    assert quoted.status == 400
    assert quoted.body[0]["errorCode"] == "MALFORMED_QUERY"


async def test_count_query(org: OrgClient) -> None:
    await org.create_many("Lead", [{"LastName": "a", "Company": "c"}] * 3)
    answer = await org.query("SELECT COUNT() FROM Lead")
    assert answer.body == {"totalSize": 3, "done": True, "records": []}


async def test_query_errors(org: OrgClient) -> None:
    malformed = await org.query("SELECT Id FRM Account")
    assert malformed.status == 400
    assert malformed.body[0]["errorCode"] == "MALFORMED_QUERY"
    unknown_type = await org.query("SELECT Id FROM Nowhere__c")
    assert unknown_type.status == 400
    assert unknown_type.body[0]["errorCode"] == "INVALID_TYPE"
    assert "sObject type 'Nowhere__c' is not supported." in unknown_type.body[0]["message"]
    unknown_field = await org.query("SELECT Id, Foo__c FROM Account")
    assert unknown_field.body[0]["errorCode"] == "INVALID_FIELD"
    empty = await org.call("GET", "query", params={"q": ""})
    assert empty.body == [
        {"message": "A query string has to be specified", "errorCode": "MALFORMED_QUERY"}
    ]


async def test_standard_object_without_records_answers_empty(org: OrgClient) -> None:
    answer = await org.query("SELECT Id, Name FROM Opportunity")
    assert answer.body == {"totalSize": 0, "done": True, "records": []}


def _minute(moment: datetime) -> str:
    return format_datetime(moment.replace(second=0, microsecond=0))


def _minutes_since(emulator: RunningEmulator, before: datetime) -> set[str]:
    """The minute of `before` and of now: the wall clock may tick over during a call."""
    return {_minute(before), _minute(emulator.ctx.clock.now())}


async def test_get_updated_covers_up_to_the_current_minute(
    emulator: RunningEmulator, org: OrgClient, http: aiohttp.ClientSession
) -> None:
    first = await org.create("Account", {"Name": "a"})
    second = await org.create("Account", {"Name": "b"})
    await org.create("Contact", {"LastName": "elsewhere"})
    await control(http, emulator.url, "clock", {"advance_s": 120})
    now = emulator.ctx.clock.now()
    params = {
        "start": (now - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": (now + timedelta(minutes=10)).isoformat(),
    }
    answer = await org.call("GET", "sobjects/Account/updated/", params=params)
    assert answer.status == 200
    assert answer.body["ids"] == [first, second]
    assert answer.body["latestDateCovered"] in _minutes_since(emulator, now)
    later = {"start": answer.body["latestDateCovered"], "end": params["end"]}
    assert (await org.call("GET", "sobjects/Account/updated", params=later)).body["ids"] == []
    third = await org.create("Account", {"Name": "c"})
    fresh = await org.call("GET", "sobjects/Account/updated", params=later)
    assert fresh.body["ids"] == [third]  # visible at once, though its minute is not covered yet
    third_stamp = (await org.get("Account", third)).body["SystemModstamp"]
    assert fresh.body["latestDateCovered"] <= third_stamp


async def test_get_updated_window_checks(org: OrgClient, emulator: RunningEmulator) -> None:
    now = emulator.ctx.clock.now()
    reversed_window = {"start": now.isoformat(), "end": (now - timedelta(hours=1)).isoformat()}
    answer = await org.call("GET", "sobjects/Account/updated/", params=reversed_window)
    assert answer.status == 400
    assert answer.body[0]["errorCode"] == "INVALID_REPLICATION_DATE"
    # Truncated to the minute, 12:30:15 and 12:30:45 are the same instant: an empty window.
    same_minute = datetime(2030, 1, 1, 12, 30, 15, tzinfo=UTC)
    window = {
        "start": same_minute.isoformat(),
        "end": (same_minute + timedelta(seconds=30)).isoformat(),
    }
    assert (await org.call("GET", "sobjects/Account/updated/", params=window)).status == 400
    too_old = {"start": (now - timedelta(days=31)).isoformat(), "end": now.isoformat()}
    old = await org.call("GET", "sobjects/Account/updated/", params=too_old)
    assert old.body[0]["errorCode"] == "INVALID_REPLICATION_DATE"
    missing = await org.call("GET", "sobjects/Account/updated/")
    assert missing.status == 400
    unknown = await org.call("GET", "sobjects/Nope__c/updated/", params=too_old)
    assert unknown.status == 404


async def test_get_deleted_and_recycle_bin_purge(
    emulator: RunningEmulator, org: OrgClient, http: aiohttp.ClientSession
) -> None:
    record_id = await org.create("Account", {"Name": "soon gone"})
    await org.call("DELETE", f"sobjects/Account/{record_id}")
    deleted_at = (await org.query("SELECT SystemModstamp FROM Account", include_deleted=True)).body[
        "records"
    ][0]["SystemModstamp"]
    await control(http, emulator.url, "clock", {"advance_s": 60})
    now = emulator.ctx.clock.now()
    window = {
        "start": (now - timedelta(days=1)).isoformat(),
        "end": (now + timedelta(minutes=5)).isoformat(),
    }
    answer = await org.call("GET", "sobjects/Account/deleted/", params=window)
    assert answer.body["deletedRecords"] == [{"id": record_id, "deletedDate": deleted_at}]
    fifteen_days = timedelta(days=15)
    assert answer.body["earliestDateAvailable"] in {
        _minute(moment - fifteen_days) for moment in (now, emulator.ctx.clock.now())
    }
    assert answer.body["latestDateCovered"] in _minutes_since(emulator, now)
    await control(http, emulator.url, "clock", {"advance_s": 16 * 86400})
    org = await OrgClient.login(http, emulator.url)  # 16 idle days ended the session
    now = emulator.ctx.clock.now()
    window = {"start": (now - timedelta(days=20)).isoformat(), "end": now.isoformat()}
    purged = await org.call("GET", "sobjects/Account/deleted/", params=window)
    assert purged.body["deletedRecords"] == []
    assert purged.body["earliestDateAvailable"] > deleted_at
    gone = await org.query("SELECT Id FROM Account", include_deleted=True)
    assert gone.body["totalSize"] == 0
