"""Pure pieces of the emulator: id shape, date-time formats, page sizes, change reports."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sftriggerd_emulator.changes import Committed, Writer, record_change
from sftriggerd_emulator.clock import EmulatorClock, format_datetime, parse_datetime
from sftriggerd_emulator.ids import IdAllocator, checksum, make_id, to_id18
from sftriggerd_emulator.query import batch_size


def test_checksum_matches_salesforce_documentation_example() -> None:
    assert checksum("001D000000IqhSL") == "IAZ"
    assert to_id18("001D000000IqhSL") == "001D000000IqhSLIAZ"
    assert to_id18("001D000000IqhSLxxx") == "001D000000IqhSLIAZ"
    assert to_id18("not an id") is None


def test_ids_sort_in_creation_order_with_and_without_case_folding() -> None:
    allocator = IdAllocator()
    ids = [allocator.next_id("001") for _ in range(2000)]
    assert ids == sorted(ids) == sorted(ids, key=str.casefold)
    assert ids[0] == make_id("001", 1) == "001EM0000000001YAA"


def test_custom_prefixes_are_handed_out_in_order() -> None:
    allocator = IdAllocator()
    assert allocator.new_key_prefix("Account") == "001"
    assert [allocator.new_key_prefix(f"X{i}__c") for i in range(3)] == ["a00", "a01", "a02"]
    restored = IdAllocator()
    restored.restore(allocator.state())
    assert restored.new_key_prefix("Next__c") == "a03"


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-01T10:15:30Z",
        "2024-05-01T10:15:30.000+0000",
        "2024-05-01T12:15:30+02:00",
        "2024-05-01T05:15:30.000-0500",
        "2024-05-01T10:15:30",
    ],
)
def test_parse_datetime_accepts_client_shapes(text: str) -> None:
    assert parse_datetime(text) == datetime(2024, 5, 1, 10, 15, 30, tzinfo=UTC)


def test_format_datetime_is_salesforce_shaped() -> None:
    moment = datetime(2013, 5, 20, 20, 49, 32, 123456, tzinfo=UTC)
    assert format_datetime(moment) == "2013-05-20T20:49:32.123+0000"


def test_clock_stamps_whole_seconds_and_freezes() -> None:
    clock = EmulatorClock()
    assert clock.stamp().microsecond == 0
    clock.freeze_stamps(datetime(2030, 1, 1, 0, 0, 0, 999, tzinfo=UTC))
    assert clock.stamp() == datetime(2030, 1, 1, tzinfo=UTC)
    clock.freeze_stamps(None)
    assert clock.stamp() != datetime(2030, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        clock.advance(-1)


@pytest.mark.parametrize(
    ("header", "size"),
    [
        (None, 2000),
        ("batchSize=500", 500),
        ("batchSize=1", 1),
        ("batchSize=0", 1),
        ("batchSize=99999", 2000),
        ("something else", 2000),
    ],
)
def test_batch_size(header: str | None, size: int) -> None:
    assert batch_size(header) == size


def test_update_reports_changed_and_nulled_fields_only() -> None:
    before = {
        "Id": "001x",
        "Name": "A",
        "Phone": "1",
        "LastModifiedDate": "t1",
        "SystemModstamp": "t1",
    }
    after = {
        "Id": "001x",
        "Name": "A",
        "Phone": None,
        "LastModifiedDate": "t2",
        "SystemModstamp": "t2",
    }
    change = record_change(
        Committed("Account", "UPDATE", (before,), (after,)),
        Writer("005x", "com/salesforce/api/rest/60.0"),
        datetime(2024, 1, 1, tzinfo=UTC),
        "key",
    )
    assert change.changed_fields == ("Phone", "LastModifiedDate")
    assert change.fields == {"Phone": None, "LastModifiedDate": "t2"}
    assert change.nulled_fields == ("Phone",)
    assert change.records == (after,)
