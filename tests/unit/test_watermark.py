"""The polling watermark's pure decisions: classification by (time, Id), the window end, gap
change types, and rows that lack the fields a watermark is read from."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftriggerd.events.model import event_id
from sftriggerd.sources.watermark import (
    EPOCH,
    MalformedRow,
    Watermark,
    after_query,
    already_seen,
    classify,
    gap_change,
    ids_query,
    initial_watermark,
    lookback_query,
    polled_event,
    range_query,
    record_id_of,
    row_watermark,
    split_rows,
    window_end,
)
from sftriggerd.store.records import RecordState

T = datetime(2026, 11, 28, 10, 15, 2, tzinfo=UTC)
STAMP = "2026-11-28T10:15:02.000+0000"
LATER = "2026-11-28T10:15:09.000+0000"


def row(record_id: str, created: str = STAMP, stamp: str = LATER, **extra: Any) -> dict[str, Any]:
    return {"Id": record_id, "CreatedDate": created, "SystemModstamp": stamp, **extra}


def test_created_or_updated_is_decided_on_time_and_id_not_on_time_alone() -> None:
    """Created in the watermark's second, but after its Id in (time, Id) order: never seen."""
    read_from = Watermark(T, "001B")
    assert classify(row("001C"), read_from, None) == "created"
    assert classify(row("001A"), read_from, None) == "updated"
    assert classify(row("001B"), read_from, None) == "updated"


def test_a_record_with_a_stored_event_is_updated_even_if_created_after_the_read_start() -> None:
    read_from = Watermark(T - timedelta(minutes=1))
    assert classify(row("001A"), read_from, None) == "created"
    assert classify(row("001A"), read_from, "created") == "updated"
    assert classify(row("001A"), read_from, "updated") == "updated"
    assert classify(row("001A"), read_from, "deleted") == "undeleted"
    assert classify(row("001A", IsDeleted=True), read_from, "created") == "deleted"


def test_the_window_ends_poll_delay_before_now_in_whole_seconds() -> None:
    now = datetime(2026, 11, 28, 10, 15, 2, 700000, tzinfo=UTC)
    assert window_end(now, timedelta(seconds=5)) == datetime(2026, 11, 28, 10, 14, 57, tzinfo=UTC)
    assert window_end(now, timedelta(0)) == now.replace(microsecond=0)


@pytest.mark.parametrize(
    ("change_type", "change"),
    [
        ("GAP_CREATE", "created"),
        ("GAP_UPDATE", "updated"),
        ("GAP_DELETE", "deleted"),
        ("GAP_UNDELETE", "undeleted"),
    ],
)
def test_gap_notices_map_to_their_change(change_type: str, change: str) -> None:
    assert gap_change(change_type) == change


@pytest.mark.parametrize(
    "broken",
    [
        {"CreatedDate": STAMP, "SystemModstamp": LATER},
        {"Id": None, "CreatedDate": STAMP, "SystemModstamp": LATER},
        {"Id": "001A", "CreatedDate": STAMP},
        {"Id": "001A", "CreatedDate": STAMP, "SystemModstamp": "yesterday"},
        {"Id": "001A", "SystemModstamp": LATER},
        {"Id": "001A", "CreatedDate": 12, "SystemModstamp": LATER},
    ],
)
def test_a_row_missing_its_fields_is_malformed_and_split_off_as_poison(
    broken: dict[str, Any],
) -> None:
    with pytest.raises(MalformedRow):
        row_watermark(broken)
        classify(broken, Watermark(T), None)
    good, poison = split_rows("accounts", [row("001Z"), broken])
    assert [r["Id"] for r in good] == ["001Z"]
    assert len(poison) == 1 and poison[0].trigger == "accounts" and poison[0].reason


field_values = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=30)
    | st.datetimes(timezones=st.just(UTC)).map(lambda t: t.isoformat())
)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.dictionaries(
            st.sampled_from(["Id", "CreatedDate", "SystemModstamp", "IsDeleted", "Name"]),
            field_values,
        ),
        max_size=5,
    ),
    last_change=st.none() | st.sampled_from(["created", "updated", "deleted"]),
)
def test_rows_from_outside_become_events_or_poison_and_nothing_else(
    rows: list[dict[str, Any]], last_change: str | None
) -> None:
    good, poison = split_rows("accounts", rows)
    assert len(good) + len(poison) == len(rows)
    for kept in good:
        change = classify(kept, Watermark(T), last_change)
        polled_event("accounts", "Account", kept, change)
        row_watermark(kept)


HEAD = "SELECT Id, CreatedDate, SystemModstamp, IsDeleted, Name FROM Account WHERE "
ORDER = " ORDER BY SystemModstamp, Id"
T_SOQL = "2026-11-28T10:15:02Z"


def test_the_after_query_reads_strictly_after_the_time_and_id_up_to_the_window_end() -> None:
    query = after_query(
        "Account", ["Name", "id"], "Type = 'X'", Watermark(T, "001A"), T + timedelta(seconds=5)
    )
    assert query == (
        f"{HEAD}(SystemModstamp > {T_SOQL} OR (SystemModstamp = {T_SOQL} AND Id > '001A'))"
        f" AND SystemModstamp <= 2026-11-28T10:15:07Z AND (Type = 'X'){ORDER}"
    )


def test_the_lookback_query_reads_the_window_up_to_and_including_the_watermark() -> None:
    since = T - timedelta(minutes=5)
    query = lookback_query("Account", ["Name"], "Type = 'X'", Watermark(T, "001A"), since)
    assert query == (
        f"{HEAD}SystemModstamp >= 2026-11-28T10:10:02Z AND (SystemModstamp < {T_SOQL}"
        f" OR (SystemModstamp = {T_SOQL} AND Id <= '001A')) AND (Type = 'X'){ORDER}"
    )


def test_the_range_and_ids_queries() -> None:
    assert range_query("Account", ["Name"], "Type = 'X'", T, T + timedelta(seconds=1)) == (
        f"{HEAD}SystemModstamp >= {T_SOQL} AND SystemModstamp <= 2026-11-28T10:15:03Z"
        f" AND (Type = 'X'){ORDER}"
    )
    assert ids_query("Account", ["Name"], None, ["001A", "001B"]) == (
        f"{HEAD}Id IN ('001A', '001B'){ORDER}"
    )
    assert ids_query("Account", ["Name"], "Type = 'X'", ["001A"]) == (
        f"{HEAD}Id IN ('001A') AND (Type = 'X'){ORDER}"
    )


def test_the_initial_watermark_and_its_text() -> None:
    assert initial_watermark("earliest", T) == Watermark(EPOCH)
    assert initial_watermark("latest", T) == Watermark(T)
    assert initial_watermark(T - timedelta(days=1), T) == Watermark(T - timedelta(days=1))
    assert str(Watermark(T, "001A")) == "2026-11-28T10:15:02.000Z 001A"
    assert str(Watermark(T)) == "2026-11-28T10:15:02.000Z"


def test_a_row_is_already_seen_only_behind_a_stored_event_as_new_that_is_not_a_delete() -> None:
    stamped = row("001A", stamp=STAMP, Name="Acme")
    assert not already_seen(stamped, None)
    assert already_seen(stamped, RecordState("updated", T + timedelta(seconds=1)))
    assert not already_seen(stamped, RecordState("updated", T - timedelta(seconds=1)))
    assert not already_seen(stamped, RecordState("deleted", T + timedelta(seconds=1)))
    # The same second (stored times keep milliseconds): seen only if the row shows nothing new.
    same = T.replace(microsecond=500)
    assert already_seen(stamped, RecordState("updated", same, {"Name": "Acme"}))
    assert not already_seen(stamped, RecordState("updated", same, {"Name": "Old"}))
    assert not already_seen(stamped, RecordState("updated", same))


def test_a_polled_event_carries_the_row_and_a_stable_id() -> None:
    read = {"attributes": {"type": "Account"}, **row("001A", stamp=STAMP), "Name": "Acme"}
    event = polled_event("accounts", "Account", read, "updated")
    assert event.id == event_id("poll", "Account", "001A", "2026-11-28T10:15:02.000Z")
    assert (event.trigger, event.object, event.change) == ("accounts", "Account", "updated")
    assert (event.record_id, event.occurred_at) == ("001A", T)
    assert event.source == {"kind": "polling", "watermark": "2026-11-28T10:15:02.000Z"}
    assert event.record == {k: v for k, v in read.items() if k != "attributes"}
    assert event.raw == read
    filled = polled_event("accounts", "Account", read, "updated", gap_fill=True)
    assert filled.source["gap_fill"] is True and filled.id == event.id


def test_the_row_watermark_is_its_stamp_and_id() -> None:
    assert row_watermark(row("001A", stamp=STAMP)) == Watermark(T, "001A")


def test_an_empty_id_is_malformed_and_the_poison_keeps_the_row_and_the_reason() -> None:
    with pytest.raises(MalformedRow, match="no Id"):
        record_id_of({"Id": ""})
    bad = row("001B", stamp="soon", Name="Zoë")
    good, poison = split_rows("accounts", [bad])
    assert good == [] and len(poison) == 1
    assert poison[0].message == json.dumps(bad, ensure_ascii=True)
    assert "'001B'" in poison[0].reason and "SystemModstamp 'soon' is not a time" in (
        poison[0].reason
    )


def test_an_unknown_gap_type_is_an_update() -> None:
    assert gap_change("GAP_OVERFLOW") == "updated"


def test_a_row_with_a_value_json_cannot_write_is_still_kept_as_poison() -> None:
    odd = {"Id": "001C", "CreatedDate": STAMP, "SystemModstamp": T}  # not text: malformed
    good, poison = split_rows("accounts", [odd])
    assert good == [] and poison[0].message == json.dumps(odd, default=str)
    assert poison[0].reason.startswith("row '001C' has no SystemModstamp: ")


def test_a_row_created_at_its_stamp_is_created_even_behind_the_read_start() -> None:
    # A late-committing insert found by the look-back: created and stamped in one second.
    late = row("001A", created=STAMP, stamp=STAMP)
    assert classify(late, Watermark(T + timedelta(minutes=1), "001Z"), None) == "created"
