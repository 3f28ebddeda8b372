"""The argument rules the store commands share, as pure functions (the CLI tests run them
through the console script)."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sftriggerd.commands_deliveries import limit_arg, require_known
from sftriggerd.errors import UsageError


@given(st.text(max_size=30))
def test_a_limit_is_one_to_a_thousand_in_ascii_digits_or_refused(text: str) -> None:
    try:
        limit = limit_arg(text)
    except argparse.ArgumentTypeError as exc:
        assert "from 1 to 1000" in str(exc)
        return
    assert text.isascii() and text.isdigit() and 1 <= limit <= 1000 and int(text) == limit


def test_an_unknown_name_lists_the_known_ones() -> None:
    require_known("trigger", None, ["a"])
    require_known("trigger", "a", ["b", "a"])
    with pytest.raises(
        UsageError, match=r"no trigger named 'c' in the configuration \(known: a, b\)"
    ):
        require_known("trigger", "c", ["b", "a"])
    with pytest.raises(UsageError, match="no endpoints are configured"):
        require_known("endpoint", "c", [])
