"""Review of issue 14's streamed `where`: Salesforce matches a 15-character record id in a
condition against the 18-character id a record holds (SOQL accepts either spelling). A poll
with `OwnerId = '005...'` (15 characters, as the classic UI's addresses show them) finds the
record; the same condition on the streamed change must keep it too, or the change is lost."""

from __future__ import annotations

import pytest

from sftriggerd.soql_engine import parse_condition

OWNER_15 = "005Dn000003ZbQx"
OWNER_18 = "005Dn000003ZbQxIAK"


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (f"OwnerId = '{OWNER_15}'", True),
        (f"OwnerId != '{OWNER_15}'", False),
        (f"OwnerId IN ('{OWNER_15}', '001000000000001')", True),
        (f"OwnerId NOT IN ('{OWNER_15}')", False),
        (f"OwnerId = '{OWNER_18}'", True),
        ("OwnerId = '005Dn000003ZbQy'", False),
    ],
)
def test_a_15_character_id_matches_its_18_character_spelling(
    condition: str, expected: bool
) -> None:
    assert parse_condition(condition).holds({"OwnerId": OWNER_18}) is expected
