"""The polling watermark and the decisions made with it; pure functions, no I/O.

The watermark is the (SystemModstamp, Id) of the last record read, so records sharing a
second are never skipped: the next read starts strictly after that pair in the same order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import SftriggerdError
from ..events.model import Change, Event, event_id
from ..events.payload import format_time
from ..salesforce.soql import identifier, literal, parse_datetime
from ..store.records import PoisonEvent, RecordState

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SYSTEM_FIELDS = ("Id", "CreatedDate", "SystemModstamp", "IsDeleted")
# Fields a re-read row is not compared on: system fields, read differently by each API.
_NOT_COMPARED = frozenset({*SYSTEM_FIELDS, "attributes", "LastModifiedDate"})
_POISON_TEXT = 4000
_GAP_CHANGES: dict[str, Change] = {
    "GAP_CREATE": "created",
    "GAP_UPDATE": "updated",
    "GAP_DELETE": "deleted",
    "GAP_UNDELETE": "undeleted",
}


class MalformedRow(SftriggerdError):
    """A queried row lacks a field the watermark needs (Id, CreatedDate, SystemModstamp) or
    holds one that cannot be read; the row is kept as poison and the read moves on."""


def record_id_of(row: Mapping[str, Any]) -> str:
    value = row.get("Id")
    if not isinstance(value, str) or not value:
        raise MalformedRow(f"row has no Id: {value!r:.80}")
    return value


def row_time(row: Mapping[str, Any], field: str) -> datetime:
    value = row.get(field)
    if not isinstance(value, str):
        raise MalformedRow(f"row {row.get('Id')!r:.40} has no {field}: {value!r:.80}")
    try:
        return parse_datetime(value)
    except (ValueError, OverflowError) as exc:
        problem = f"row {row.get('Id')!r:.40}: {field} {value!r:.80} is not a time"
        raise MalformedRow(problem) from exc


def split_rows(
    trigger: str, rows: Iterable[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[PoisonEvent]]:
    """The rows a watermark can be read from, and the others as poison (kept, passed over)."""
    good: list[dict[str, Any]] = []
    poison: list[PoisonEvent] = []
    for row in rows:
        try:
            record_id_of(row)
            row_time(row, "SystemModstamp")
            row_time(row, "CreatedDate")
        except MalformedRow as exc:
            text = json.dumps(row, default=str, ensure_ascii=True)[:_POISON_TEXT]
            poison.append(PoisonEvent(trigger=trigger, reason=str(exc), message=text))
            continue
        good.append(dict(row))
    return good, poison


def gap_change(change_type: str) -> Change:
    """The change a CDC gap notice reports for its records (GAP_UPDATE and unknown: updated)."""
    return _GAP_CHANGES.get(change_type, "updated")


@dataclass(frozen=True)
class Watermark:
    time: datetime
    record_id: str = ""

    def __str__(self) -> str:
        return f"{format_time(self.time)} {self.record_id}".strip()


def initial_watermark(start_from: str | datetime, now: datetime) -> Watermark:
    if start_from == "earliest":
        return Watermark(EPOCH)
    if start_from == "latest":
        return Watermark(now)
    assert isinstance(start_from, datetime)
    return Watermark(start_from)


def select_list(fields: Iterable[str]) -> str:
    names = list(SYSTEM_FIELDS)
    for name in fields:
        if name.lower() not in {n.lower() for n in names}:
            names.append(identifier(name))
    return ", ".join(names)


def after_query(
    object_name: str, fields: Iterable[str], where: str | None, after: Watermark, upper: datetime
) -> str:
    """Records changed after the watermark and no later than `upper`, in watermark order."""
    t, record = literal(after.time), literal(after.record_id)
    condition = (
        f"(SystemModstamp > {t} OR (SystemModstamp = {t} AND Id > {record}))"
        f" AND SystemModstamp <= {literal(upper)}"
    )
    return _query(object_name, fields, where, condition)


def lookback_query(
    object_name: str, fields: Iterable[str], where: str | None, upto: Watermark, since: datetime
) -> str:
    """Records stamped within the look-back window at or before the watermark: late commits."""
    t, record = literal(upto.time), literal(upto.record_id)
    condition = (
        f"SystemModstamp >= {literal(since)}"
        f" AND (SystemModstamp < {t} OR (SystemModstamp = {t} AND Id <= {record}))"
    )
    return _query(object_name, fields, where, condition)


def range_query(
    object_name: str, fields: Iterable[str], where: str | None, start: datetime, end: datetime
) -> str:
    """Records stamped in [start, end]: for filling a streaming gap."""
    condition = f"SystemModstamp >= {literal(start)} AND SystemModstamp <= {literal(end)}"
    return _query(object_name, fields, where, condition)


def ids_query(
    object_name: str, fields: Iterable[str], where: str | None, record_ids: Iterable[str]
) -> str:
    """The named records that meet `where` (with queryAll, deleted ones too): for a gap
    notice."""
    condition = f"Id IN ({', '.join(literal(r) for r in record_ids)})"
    return _query(object_name, fields, where, condition)


def _query(object_name: str, fields: Iterable[str], where: str | None, condition: str) -> str:
    extra = f" AND ({where})" if where else ""
    return (
        f"SELECT {select_list(fields)} FROM {identifier(object_name)}"
        f" WHERE {condition}{extra} ORDER BY SystemModstamp, Id"
    )


def row_watermark(row: Mapping[str, Any]) -> Watermark:
    return Watermark(row_time(row, "SystemModstamp"), record_id_of(row))


def already_seen(row: Mapping[str, Any], last: RecordState | None) -> bool:
    """True when a stored event of the record is at least as new as this row (for example
    a streamed change that a gap fill reads again under another event id).

    SystemModstamp has whole seconds, a change event's time milliseconds: a stored event of
    the row's own second may be an earlier change of that second, and the row a later one
    never delivered. So within the same second the row counts as seen only when it shows
    nothing the stored event did not (every selected field present there, equal); when in
    doubt it is delivered (a possible duplicate, never a loss)."""
    if last is None or last.change == "deleted":
        return False
    stamp = row_time(row, "SystemModstamp")
    stored = last.occurred_at.replace(microsecond=0)
    if stored != stamp:
        return stored > stamp
    fields = [k for k in row if k not in _NOT_COMPARED]
    record = last.record
    return (
        record is not None
        and bool(fields)
        and all(k in record and record[k] == row[k] for k in fields)
    )


def classify(row: Mapping[str, Any], read_from: Watermark, last_change: str | None) -> Change:
    """created, updated, deleted or undeleted, from the row and what was last stored.

    A record with a stored event was seen: `updated` (a back-fill that starts before its
    creation must not report it as created a second time). A record whose creation lies
    after where this read started was never seen, so it is `created` even if it changed
    again since (one event for both).
    """
    if row.get("IsDeleted") is True:
        return "deleted"
    if last_change == "deleted":
        return "undeleted"
    if last_change is not None:
        return "updated"
    created_at = row_time(row, "CreatedDate")
    if created_at == row_time(row, "SystemModstamp"):
        return "created"  # includes inserts that committed late, found by the look-back
    if (created_at, record_id_of(row)) > (read_from.time, read_from.record_id):
        return "created"
    return "updated"


def polled_event(
    trigger: str, object_name: str, row: Mapping[str, Any], change: Change, gap_fill: bool = False
) -> Event:
    stamp = row_time(row, "SystemModstamp")
    record_id = record_id_of(row)
    source: dict[str, Any] = {"kind": "polling", "watermark": format_time(stamp)}
    if gap_fill:
        source["gap_fill"] = True
    return Event(
        # Id + stamp: the same row read twice (look-back, gap fill) is the same event.
        id=event_id("poll", object_name, record_id, format_time(stamp)),
        trigger=trigger,
        object=object_name,
        change=change,
        record_id=record_id,
        occurred_at=stamp,
        source=source,
        record={k: v for k, v in row.items() if k != "attributes"},
        raw=dict(row),
    )


def window_end(now: datetime, delay: timedelta) -> datetime:
    """The newest stamp a read may take: a little before now, never in the future, so a
    future-dated record cannot drag the watermark ahead. Whole seconds, as stamps are."""
    return (now - delay).replace(microsecond=0)
