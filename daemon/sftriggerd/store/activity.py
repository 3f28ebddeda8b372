"""What the store tells about deliveries that finished lately: counts per endpoint and
minute, and the newest few with what they carried. The status page draws it.

Minutes are whole minutes since the Unix epoch (UTC), so every engine counts them the same
way and a chart's axis is plain integers. Only finished deliveries count: delivered and
dead. A retry is not a finish; its delivery counts once, in the minute it finishes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

FinishedStatus = Literal["delivered", "dead"]
# The SQL engines read one status at a time, each through the partial index of its own
# status by finish time (the same names on every engine), so rows that finished before the
# window are not read: neither the delivered history nor the dead rows kept for a redrive.
FINISHED_INDEXES: dict[FinishedStatus, str] = {
    "delivered": "deliveries_delivered",
    "dead": "deliveries_dead_finished",
}
FINISHED_STATUSES: tuple[FinishedStatus, ...] = tuple(FINISHED_INDEXES)
# What an SQL engine selects of a finished delivery (`d`) and its event (`e`), in the order
# `SqlActivity.add_finished` reads it.
FINISHED_COLUMNS = """d.id, d.endpoint, e.trigger, e.event_id, e.record_id, e.change, d.status,
        d.last_status, e.occurred_at, d.finished_at, e.body"""


def each_finished_status(select: str) -> str:
    """One statement of `select` for every finished status, joined by UNION ALL: `{status}`
    becomes the status as a literal, `{index}` its index. A partial index serves only a
    query whose WHERE names its own condition, which a bound parameter does not."""
    return "\nUNION ALL\n".join(
        select.format(status=f"'{status}'", index=index)
        for status, index in FINISHED_INDEXES.items()
    )


@dataclass(frozen=True)
class MinuteTally:
    endpoint: str
    minute: int  # whole minutes since the epoch
    delivered: int
    dead: int


@dataclass(frozen=True)
class FinishedDelivery:
    """One finished delivery with its event: what the live feed shows."""

    id: int
    endpoint: str
    trigger: str
    event_id: str
    record_id: str | None
    change: str
    status: FinishedStatus
    last_status: int | None
    occurred_at: datetime
    finished_at: datetime
    # The webhook body as stored: the page reads the record's type and the transport in it.
    body: bytes

    @property
    def latency_ms(self) -> int:
        """From the change in Salesforce to the answer that finished its delivery."""
        return max(0, round((self.finished_at - self.occurred_at).total_seconds() * 1000))


@dataclass(frozen=True)
class RecentActivity:
    # The store's clock when it counted, in epoch minutes: the last minute of the window.
    now_minute: int
    # Only minutes with a finish, by endpoint and minute.
    tallies: tuple[MinuteTally, ...]
    # Newest finish first.
    latest: tuple[FinishedDelivery, ...]


def epoch_minute(at: datetime) -> int:
    return int(at.timestamp() // 60)


def tally(
    finishes: list[tuple[str, FinishedStatus, datetime]],
) -> tuple[MinuteTally, ...]:
    """Counts (endpoint, status, finished_at) triples by endpoint and minute."""
    counts: dict[tuple[str, int], list[int]] = {}
    for endpoint, status, finished_at in finishes:
        pair = counts.setdefault((endpoint, epoch_minute(finished_at)), [0, 0])
        pair[0 if status == "delivered" else 1] += 1
    return tuple(
        MinuteTally(endpoint, minute, delivered, dead)
        for (endpoint, minute), (delivered, dead) in sorted(counts.items())
    )


def newest(found: list[FinishedDelivery], limit: int) -> tuple[FinishedDelivery, ...]:
    """The `limit` newest finishes (ties: the higher id first)."""
    ordered = sorted(found, key=lambda d: (d.finished_at, d.id), reverse=True)
    return tuple(ordered[:limit])


@dataclass
class SqlActivity:
    """What an SQL engine's reads found, one status at a time: the finishes per endpoint and
    minute, and the newest finishes of each status; then the one `RecentActivity` of them."""

    # (endpoint, minute): [delivered, dead]
    counts: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    found: list[FinishedDelivery] = field(default_factory=list)

    def add_minute(self, status: FinishedStatus, endpoint: str, minute: int, count: int) -> None:
        pair = self.counts.setdefault((endpoint, minute), [0, 0])
        pair[FINISHED_STATUSES.index(status)] += count

    def add_finished(self, row: Sequence[Any], when: Callable[[Any], datetime]) -> None:
        """A row of `FINISHED_COLUMNS`; `when` reads the engine's stored time."""
        self.found.append(
            FinishedDelivery(
                id=row[0],
                endpoint=row[1],
                trigger=row[2],
                event_id=row[3],
                record_id=row[4],
                change=row[5],
                status=row[6],
                last_status=row[7],
                occurred_at=when(row[8]),
                finished_at=when(row[9]),
                body=bytes(row[10]),
            )
        )

    def activity(self, now_minute: int, latest: int) -> RecentActivity:
        tallies = tuple(
            MinuteTally(endpoint, minute, delivered, dead)
            for (endpoint, minute), (delivered, dead) in sorted(self.counts.items())
        )
        return RecentActivity(
            now_minute=now_minute, tallies=tallies, latest=newest(self.found, latest)
        )
