"""The status page's reader counts the whole hour once, then only the last two minutes on
each refresh, because "a busy hour is millions of rows, which the store should not count
again every five seconds" (about a second per million rows on SQLite, on the store's one
thread, which every claim, outcome and /readyz ping of every endpoint waits for).

But a read marks itself "no read yet" while it runs, so every page view that arrives during
it (a second browser tab, a dashboard, a probe pointed at `/`) counts the whole hour again;
and since a whole-hour read is the slow one, views overlap more the busier the store is.
Real SQLite store; the statements it runs are watched through SQLite's own trace hook."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from sftriggerd.admin.activity_view import ActivityReader
from sftriggerd.store.sqlite import SqliteStore

WHOLE_HOUR_S = 3600.0


async def test_page_views_at_once_do_not_each_count_the_whole_hour(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    await store.open()
    try:
        reader = ActivityReader()
        at_s = time.monotonic()
        await reader.read(store, at_s)  # the page's first view: the whole hour, once

        windows: list[float] = []

        def watch(statement: str) -> None:
            # `finished_at >= <since>`: how far back each count reaches.
            found = re.search(r"finished_at >= ([0-9.e+]+)", statement)
            if found and "count(*)" in statement:
                windows.append(time.time() - float(found.group(1)))

        assert store._db is not None
        store._db.set_trace_callback(watch)
        # Three views 5 s later, at once (three tabs refreshing).
        await asyncio.gather(*(reader.read(store, at_s + 5) for _ in range(3)))
        store._db.set_trace_callback(None)
    finally:
        await store.close()
    assert windows  # the counts were seen
    whole_hour_counts = [w for w in windows if w > WHOLE_HOUR_S / 2]
    assert whole_hour_counts == [], f"{len(whole_hour_counts)} of {len(windows)} counts"
