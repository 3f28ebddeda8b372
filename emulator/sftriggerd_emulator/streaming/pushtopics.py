"""PushTopics: SOQL-defined channels, learned from PushTopic records the org reports.

A client creates a topic as on Salesforce, `POST /services/data/vXX.X/sobjects/PushTopic`
with `Name`, `Query`, `ApiVersion` and the `NotifyFor...` fields. The REST side stores it like
any record; the streaming side listens for changes to object `PushTopic` and keeps a parsed
copy, so updating `IsActive`/`Query` or deleting the record takes effect at once.

Salesforce refuses a PushTopic with a query it cannot run; the REST side cannot, so a topic
whose query does not parse is kept but never matches (and subscribing to it still works).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sftriggerd.soql_engine import Query, SoqlError, parse_query, run_query
from sftriggerd.soql_engine.nodes import predicates
from sftriggerd_emulator.clock import parse_datetime
from sftriggerd_emulator.context import RecordChange

PUSHTOPIC_OBJECT = "PushTopic"
_EVENT_TYPES = {
    "CREATE": "created",
    "UPDATE": "updated",
    "DELETE": "deleted",
    "UNDELETE": "undeleted",
}
_OPERATION_FLAGS = {
    "CREATE": "NotifyForOperationCreate",
    "UPDATE": "NotifyForOperationUpdate",
    "DELETE": "NotifyForOperationDelete",
    "UNDELETE": "NotifyForOperationUndelete",
}


@dataclass(frozen=True)
class PushTopic:
    name: str
    query_text: str
    query: Query | None
    active: bool = True
    notify_for_fields: str = "Referenced"
    operations: frozenset[str] = frozenset(_EVENT_TYPES)
    record_id: str = ""

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> PushTopic:
        """The topic a PushTopic record defines; absent flags take Salesforce's defaults."""
        text = str(record.get("Query") or "")
        try:
            query: Query | None = parse_query(text)
        except SoqlError:
            query = None
        operations = frozenset(
            change for change, flag in _OPERATION_FLAGS.items() if record.get(flag) is not False
        )
        return cls(
            name=str(record.get("Name") or ""),
            query_text=text,
            query=query,
            active=record.get("IsActive") is not False,
            notify_for_fields=str(record.get("NotifyForFields") or "Referenced"),
            operations=operations,
            record_id=str(record.get("Id") or ""),
        )

    def definition(self) -> dict[str, Any]:
        """The record fields that define this topic, for persistence."""
        flags = {flag: change in self.operations for change, flag in _OPERATION_FLAGS.items()}
        return {
            "Id": self.record_id,
            "Name": self.name,
            "Query": self.query_text,
            "IsActive": self.active,
            "NotifyForFields": self.notify_for_fields,
            **flags,
        }

    def events_for(self, change: RecordChange) -> list[tuple[str, dict[str, Any]]]:
        """(event type, sobject) for every record of `change` this topic reports."""
        query = self.query
        if not self.active or query is None or change.change_type not in self.operations:
            return []
        if query.object_name.casefold() != change.object_name.casefold():
            return []
        if change.change_type == "UPDATE" and not self._fields_qualify(query, change):
            return []
        event_type = _EVENT_TYPES[change.change_type]
        found: list[tuple[str, dict[str, Any]]] = []
        for record in change.records:
            if not _matches(query, record):
                continue
            if change.change_type == "DELETE":
                found.append((event_type, {"Id": record.get("Id")}))
            else:
                found.append((event_type, _selected(query, record)))
        return found

    def _fields_qualify(self, query: Query, change: RecordChange) -> bool:
        """NotifyForFields: which changed fields make an update worth an event."""
        if self.notify_for_fields == "All":
            return True
        where = {p.field.name.casefold() for p in predicates(query.where)} if query.where else set()
        select = {name.casefold() for name in query.select}
        watched = {"Select": select, "Where": where}.get(self.notify_for_fields, select | where)
        return any(name.casefold() in watched for name in change.changed_fields)


def _matches(query: Query, record: Mapping[str, Any]) -> bool:
    if query.where is None:
        return True
    bare = Query(
        select=("Id",),
        count_only=False,
        object_name=query.object_name,
        where=query.where,
        text=query.text,
    )
    known = {*record, *(p.field.name for p in predicates(query.where))}
    try:
        return bool(run_query(bare, [_typed(record)], known))
    except SoqlError:
        return False


def _selected(query: Query, record: Mapping[str, Any]) -> dict[str, Any]:
    spellings = {name.casefold(): name for name in record}
    selected: dict[str, Any] = {}
    for name in ("Id", *query.select):
        key = spellings.get(name.casefold())
        selected[key or name] = None if key is None else record[key]
    return selected


def _typed(record: Mapping[str, Any]) -> dict[str, Any]:
    """Datetime and date text as Python values, the types the SOQL engine compares."""
    typed: dict[str, Any] = {}
    for name, value in record.items():
        typed[name] = value
        if isinstance(value, str) and len(value) >= 10 and value[4:5] == "-":
            try:
                typed[name] = parse_datetime(value) if "T" in value else date.fromisoformat(value)
            except ValueError:
                pass
    return typed


class PushTopics:
    """The topics by name (case-sensitive, as channel names are)."""

    def __init__(self, definitions: Iterable[Mapping[str, Any]] = ()) -> None:
        self._topics: dict[str, PushTopic] = {}
        self._by_record: dict[str, str] = {}
        for definition in definitions:
            self.define(PushTopic.from_record(definition))

    def define(self, topic: PushTopic) -> None:
        if topic.name:
            self._topics[topic.name] = topic
        if topic.record_id:
            self._by_record[topic.record_id] = topic.name

    def exists(self, name: str) -> bool:
        return name in self._topics

    def selected_fields(self, name: str) -> frozenset[str] | None:
        """The topic's SELECT list in lower case (Id included), or None for no such topic."""
        topic = self._topics.get(name)
        if topic is None:
            return None
        selected = () if topic.query is None else topic.query.select
        return frozenset(field.casefold() for field in ("Id", *selected))

    def topics(self) -> list[PushTopic]:
        return list(self._topics.values())

    def learn(self, change: RecordChange) -> list[PushTopic | str]:
        """Applies a change to PushTopic records; returns the topics defined (or names removed)."""
        touched: list[PushTopic | str] = []
        for record_id, record in zip(change.record_ids, change.records, strict=False):
            previous = self._by_record.get(record_id)
            if change.change_type == "DELETE":
                if previous is not None:
                    self._topics.pop(previous, None)
                    touched.append(previous)
                continue
            topic = PushTopic.from_record(record)
            if previous is not None and previous != topic.name:
                self._topics.pop(previous, None)
                touched.append(previous)
            self.define(topic)
            touched.append(topic)
        return touched
