"""The org's records: create, update, soft delete into the recycle bin, undelete.

Every write is one transaction: validated whole, persisted, applied in memory, then reported
to listeners as one RecordChange per object it touched (sharing a transaction key). Records
are kept JSON-ready (datetimes already in Salesforce's format), which is what the REST layer
answers, the store writes and the listeners receive.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sftriggerd_emulator.changes import Committed, Writer, new_transaction_key, record_change
from sftriggerd_emulator.clock import EmulatorClock, format_datetime, parse_datetime
from sftriggerd_emulator.context import ChangeType, RecordChange
from sftriggerd_emulator.errors import ApiError, not_found
from sftriggerd_emulator.ids import STANDARD_KEY_PREFIXES, IdAllocator, to_id18
from sftriggerd_emulator.persistence import OrgStore, StoredRecord
from sftriggerd_emulator.schema import ObjectSchema, canonical_object_name

RECYCLE_BIN_RETENTION = timedelta(days=15)
_NOT_RECORD_OBJECTS = {"User", "Organization"}


@dataclass(frozen=True)
class DeletedRecord:
    record_id: str
    deleted_at: datetime


class EmulatorOrg:
    """The concrete `Org`: records by object, in id order, plus the recycle bin."""

    def __init__(self, clock: EmulatorClock, store: OrgStore | None) -> None:
        self._clock = clock
        self._store = store
        self._ids = IdAllocator()
        self._schemas: dict[str, ObjectSchema] = {}
        self._records: dict[str, dict[str, dict[str, Any]]] = {}
        self._deleted_at: dict[str, datetime] = {}
        self._dirty_schemas: set[str] = set()
        self._listeners: list[Callable[[RecordChange], None]] = []
        self._load()
        for name in STANDARD_KEY_PREFIXES:
            if name not in _NOT_RECORD_OBJECTS:
                self._ensure_schema(name)

    def _load(self) -> None:
        if self._store is None:
            return
        snapshot = self._store.load()
        self._ids.restore(snapshot.ids)
        for state in snapshot.objects:
            schema = ObjectSchema.from_state(state)
            self._schemas[schema.name.lower()] = schema
            self._records[schema.name] = {}
        for stored in snapshot.records:
            self._records.setdefault(stored.object_name, {})[stored.record_id] = stored.fields
            if stored.deleted_at is not None:
                self._deleted_at[stored.record_id] = parse_datetime(stored.deleted_at)

    def add_listener(self, listener: Callable[[RecordChange], None]) -> None:
        self._listeners.append(listener)

    # -- reading ---------------------------------------------------------------------------

    def schema(self, object_name: str) -> ObjectSchema | None:
        """The object's schema when the org knows it (standard, or written to before)."""
        return self._schemas.get(object_name.lower())

    def schemas(self) -> list[ObjectSchema]:
        return list(self._schemas.values())

    def get(self, object_name: str, record_id: str) -> dict[str, Any]:
        """A live record; raises NOT_FOUND for unknown, mismatched or deleted ids."""
        schema, full_id = self._locate(object_name, record_id)
        record = self._records[schema.name].get(full_id)
        if record is None or full_id in self._deleted_at:
            raise not_found()
        return dict(record)

    def rows(self, object_name: str, *, include_deleted: bool) -> list[dict[str, Any]]:
        """Records in id order; recycle-bin rows only with `include_deleted` (queryAll)."""
        self.purge_recycle_bin()
        schema = self.schema(object_name)
        if schema is None:
            return []
        return [
            dict(record)
            for record_id, record in self._records[schema.name].items()
            if include_deleted or record_id not in self._deleted_at
        ]

    def updated_ids(self, object_name: str, start: datetime, end: datetime) -> list[str]:
        """Live records whose SystemModstamp lies in [start, end), for getUpdated."""
        return [
            str(record["Id"])
            for record in self.rows(object_name, include_deleted=False)
            if start <= parse_datetime(record["SystemModstamp"]) < end
        ]

    def deleted_between(
        self, object_name: str, start: datetime, end: datetime
    ) -> list[DeletedRecord]:
        """Recycle-bin entries deleted in [start, end), for getDeleted."""
        self.purge_recycle_bin()
        schema = self.schema(object_name)
        if schema is None:
            return []
        return [
            DeletedRecord(record_id, self._deleted_at[record_id])
            for record_id in self._records[schema.name]
            if record_id in self._deleted_at and start <= self._deleted_at[record_id] < end
        ]

    def earliest_deleted_available(self) -> datetime:
        return self._clock.now() - RECYCLE_BIN_RETENTION

    # -- writing ---------------------------------------------------------------------------

    def check_write(self, object_name: str, raw: dict[str, Any]) -> None:
        """Raises the ApiError a create of these fields would raise, writing nothing."""
        self._ensure_schema(object_name).accept_write(raw)

    def create(
        self, items: list[tuple[str, dict[str, Any]]], writer: Writer, stamp: datetime | None = None
    ) -> list[str]:
        """Inserts (object, fields) pairs in one transaction; returns the new ids in order.

        `stamp` backdates CreatedDate/LastModifiedDate/SystemModstamp (late commits).
        """
        prepared = [(self._ensure_schema(name), fields) for name, fields in items]
        accepted = [(schema, schema.accept_write(fields)) for schema, fields in prepared]
        moment = format_datetime(stamp or self._clock.stamp())
        created: list[tuple[str, dict[str, Any]]] = []
        for schema, fields in accepted:
            record_id = self._ids.next_id(schema.key_prefix)
            record: dict[str, Any] = {"Id": record_id, **fields, "IsDeleted": False}
            record |= _system_stamps(writer, moment, created=True)
            created.append((schema.name, record))
        by_object: dict[str, list[dict[str, Any]]] = {}
        for object_name, record in created:
            by_object.setdefault(object_name, []).append(record)
        self._commit(
            [Committed(name, "CREATE", (), tuple(rows)) for name, rows in by_object.items()],
            writer,
        )
        return [str(record["Id"]) for _, record in created]

    def update(
        self,
        object_name: str,
        record_id: str,
        raw: dict[str, Any],
        writer: Writer,
        stamp: datetime | None = None,
    ) -> None:
        schema, before = self._live_for_write(object_name, record_id)
        fields = schema.accept_write(raw)
        moment = format_datetime(stamp or self._clock.stamp())
        after = before | fields | _system_stamps(writer, moment, created=False)
        self._commit([Committed(schema.name, "UPDATE", (before,), (after,))], writer)

    def delete(self, object_name: str, record_id: str, writer: Writer) -> None:
        schema, before = self._live_for_write(object_name, record_id)
        moment = format_datetime(self._clock.stamp())
        after = before | {"IsDeleted": True} | _system_stamps(writer, moment, created=False)
        self._commit([Committed(schema.name, "DELETE", (before,), (after,))], writer)

    def undelete(self, object_name: str, record_id: str, writer: Writer) -> str:
        schema, full_id = self._locate(object_name, record_id)
        before = self._records[schema.name].get(full_id)
        if before is None:
            raise not_found()
        if full_id not in self._deleted_at:
            raise ApiError(400, "UNDELETE_FAILED", "Entity is not in the recycle bin", ("Id",))
        moment = format_datetime(self._clock.stamp())
        after = before | {"IsDeleted": False} | _system_stamps(writer, moment, created=False)
        self._commit([Committed(schema.name, "UNDELETE", (before,), (after,))], writer)
        return full_id

    def purge_recycle_bin(self) -> None:
        """Hard-deletes recycle-bin rows older than the 15 days Salesforce keeps them."""
        cutoff = self.earliest_deleted_available()
        expired = [record_id for record_id, at in self._deleted_at.items() if at < cutoff]
        if not expired:
            return
        if self._store is not None:
            self._store.commit(removed_ids=expired)
        for record_id in expired:
            del self._deleted_at[record_id]
            for records in self._records.values():
                records.pop(record_id, None)

    # -- internals -------------------------------------------------------------------------

    def _ensure_schema(self, object_name: str) -> ObjectSchema:
        schema = self.schema(object_name)
        if schema is None:
            name = canonical_object_name(object_name)
            schema = ObjectSchema(name, self._ids.new_key_prefix(name))
            self._schemas[name.lower()] = schema
            self._records[name] = {}
            self._dirty_schemas.add(name.lower())
        return schema

    def _locate(self, object_name: str, record_id: str) -> tuple[ObjectSchema, str]:
        schema = self.schema(object_name)
        full_id = to_id18(record_id)
        if schema is None or full_id is None or not full_id.startswith(schema.key_prefix):
            raise not_found()
        return schema, full_id

    def _live_for_write(
        self, object_name: str, record_id: str
    ) -> tuple[ObjectSchema, dict[str, Any]]:
        schema, full_id = self._locate(object_name, record_id)
        record = self._records[schema.name].get(full_id)
        if record is None:
            raise not_found()
        if full_id in self._deleted_at:
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
        return schema, dict(record)

    def _commit(self, committed: list[Committed], writer: Writer) -> None:
        """Persists, applies and reports one transaction."""
        commit_time = self._clock.now()
        stored = [
            StoredRecord(str(r["Id"]), c.object_name, r, _deleted_stamp(c.change_type, r))
            for c in committed
            for r in c.after
        ]
        if self._store is not None:
            self._store.commit(
                records=stored,
                objects=[self._schemas[name].state() for name in self._all_touched(committed)],
                ids=self._ids.state(),
            )
        self._dirty_schemas.clear()
        for record in stored:
            self._records[record.object_name][record.record_id] = record.fields
            if record.deleted_at is None:
                self._deleted_at.pop(record.record_id, None)
            else:
                self._deleted_at[record.record_id] = parse_datetime(record.deleted_at)
        key = new_transaction_key()
        for item in committed:
            change = record_change(item, writer, commit_time, key)
            for listener in self._listeners:
                listener(change)

    def _all_touched(self, committed: list[Committed]) -> set[str]:
        # Schemas learn fields during validation, so every touched object is written back.
        return self._dirty_schemas | {item.object_name.lower() for item in committed}


def _system_stamps(writer: Writer, moment: str, *, created: bool) -> dict[str, Any]:
    stamps = {"LastModifiedDate": moment, "LastModifiedById": writer.user_id}
    if created:
        stamps = {"CreatedDate": moment, "CreatedById": writer.user_id} | stamps
    return stamps | {"SystemModstamp": moment}


def _deleted_stamp(change_type: ChangeType, record: dict[str, Any]) -> str | None:
    return str(record["SystemModstamp"]) if change_type == "DELETE" else None
