"""Query locators: the rest of a query's result, kept for `nextRecordsUrl` to page through.

A query's result is fixed when it runs, as Salesforce's cursors are, and lives for two days
(the rule since API 56.0). Locators are memory only: after a restart an old `nextRecordsUrl`
answers INVALID_QUERY_LOCATOR, the same as an expired one on a real org.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from sftriggerd_emulator.errors import ApiError
from sftriggerd_emulator.ids import make_id

CURSOR_LIFETIME = timedelta(days=2)
# Old cursors are dropped past this many, so a long test run cannot grow memory without end.
MAX_OPEN_CURSORS = 500

# How rows the ORDER BY leaves tied come out: as written (ascending Id), or in reversed Id
# order, which catches a client that forgets its tie-breaker (`ORDER BY SystemModstamp, Id`).
TieOrder = Literal["insertion", "reversed"]
TIE_ORDERS: tuple[str, ...] = get_args(TieOrder)


@dataclass
class _Cursor:
    rows: list[dict[str, Any]]
    batch_size: int
    opened_at: datetime


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    total: int  # rows in the whole result, Salesforce's totalSize
    next_start: int | None  # where the next page begins, None when this page is the last


def invalid_locator() -> ApiError:
    return ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")


class QueryCursors:
    def __init__(self) -> None:
        self._cursors: dict[str, _Cursor] = {}
        self._numbers = itertools.count(1)
        # Set by `POST /_emulator/query`; every query that runs after it follows it.
        self.ties: TieOrder = "insertion"

    def tie_ordered(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows in the order a stable sort by the query's ORDER BY keeps for ties."""
        if self.ties == "reversed":
            return sorted(rows, key=lambda row: str(row.get("Id", "")), reverse=True)
        return rows

    def first_page(
        self, rows: list[dict[str, Any]], batch_size: int, now: datetime
    ) -> tuple[Page, str | None]:
        """The first page, and the locator of the rest when there is more than one page."""
        if len(rows) <= batch_size:
            return Page(rows, len(rows), None), None
        locator = make_id("01g", next(self._numbers))
        self._cursors[locator] = _Cursor(rows, batch_size, now)
        self._drop_old(now)
        return Page(rows[:batch_size], len(rows), batch_size), locator

    def page(self, locator: str, start: int, now: datetime) -> Page:
        """The page beginning at `start`; INVALID_QUERY_LOCATOR when unknown or expired."""
        cursor = self._cursors.get(locator)
        if cursor is None or now - cursor.opened_at > CURSOR_LIFETIME:
            raise invalid_locator()
        if not 0 <= start < len(cursor.rows):
            raise invalid_locator()
        end = start + cursor.batch_size
        total = len(cursor.rows)
        return Page(cursor.rows[start:end], total, end if end < total else None)

    def _drop_old(self, now: datetime) -> None:
        for locator, cursor in list(self._cursors.items()):
            if now - cursor.opened_at > CURSOR_LIFETIME:
                del self._cursors[locator]
        while len(self._cursors) > MAX_OPEN_CURSORS:
            del self._cursors[next(iter(self._cursors))]
