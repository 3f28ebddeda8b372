"""How one committed write is reported to listeners: pure functions from before/after records.

The rules follow Change Data Capture, because the streaming side turns these into CDC events:
CREATE and UNDELETE carry every non-null field, UPDATE only the fields whose value changed
(LastModifiedDate always), DELETE none; IsDeleted and SystemModstamp never appear in `fields`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sftriggerd_emulator.context import ChangeType, RecordChange

_NEVER_REPORTED = frozenset({"Id", "IsDeleted", "SystemModstamp"})


@dataclass(frozen=True)
class Writer:
    """Who writes and through what, for CreatedById/LastModifiedById and changeOrigin."""

    user_id: str
    origin: str


def rest_origin(api_version: str) -> str:
    return f"com/salesforce/api/rest/{api_version}"


@dataclass(frozen=True)
class Committed:
    """The records of one object touched by a transaction, before and after it."""

    object_name: str
    change_type: ChangeType
    before: tuple[dict[str, Any], ...]
    after: tuple[dict[str, Any], ...]


def record_change(
    committed: Committed, writer: Writer, commit_time: datetime, transaction_key: str
) -> RecordChange:
    if committed.change_type == "UPDATE":
        fields, changed = _update_fields(committed.before, committed.after)
        nulled = tuple(name for name in changed if fields[name] is None)
    elif committed.change_type == "DELETE":
        fields, changed, nulled = {}, (), ()
    else:
        fields, changed, nulled = _shared_non_null(committed.after), (), ()
    shown = committed.before if committed.change_type == "DELETE" else committed.after
    return RecordChange(
        object_name=committed.object_name,
        change_type=committed.change_type,
        record_ids=tuple(str(record["Id"]) for record in committed.after),
        fields=fields,
        changed_fields=changed,
        nulled_fields=nulled,
        commit_time=commit_time,
        commit_user=writer.user_id,
        transaction_key=transaction_key,
        change_origin=writer.origin,
        records=tuple(dict(record) for record in shown),
    )


def new_transaction_key() -> str:
    return str(uuid.uuid4())


def _shared_non_null(records: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    """Non-null fields whose value is the same in every record (all of them for one record).

    One RecordChange stands for several records only when they share these values, the way
    Salesforce merges identical changes into one event with several recordIds.
    """
    first = records[0]
    return {
        name: value
        for name, value in first.items()
        if value is not None
        and name not in _NEVER_REPORTED
        and all(other.get(name) == value for other in records[1:])
    }


def _update_fields(
    before: tuple[dict[str, Any], ...], after: tuple[dict[str, Any], ...]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    changed: list[str] = []
    for old, new in zip(before, after, strict=True):
        for name, value in new.items():
            if name in _NEVER_REPORTED or name in changed:
                continue
            if old.get(name) != value or name == "LastModifiedDate":
                changed.append(name)
    fields = {name: after[0].get(name) for name in changed}
    return fields, tuple(changed)
