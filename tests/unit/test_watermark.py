"""The polling watermark's pure decisions: classification by (time, Id), the window end, gap
change types, and rows that lack the fields a watermark is read from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftriggerd.sources.watermark import (
    MalformedRow,
    Watermark,
    classify,
    gap_change,
    polled_event,
    row_watermark,
    split_rows,
    window_end,
)

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
