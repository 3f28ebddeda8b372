"""A trigger's `where` on streamed record changes, so it narrows them as it narrows polls.

The condition is evaluated by the same engine the emulator answers SOQL with. A CDC update
carries only the fields that changed; the others the condition needs are read with one REST
call, as `enrich` reads the record. Rules where the answer is unknowable, chosen so that no
matching change is lost (at-least-once):

- a platform event is tested against its payload as it is (nothing to read back);
- deletes and undeletes pass unfiltered (a delete carries no values to test);
- a change whose record cannot be read any more (deleted since) passes;
- a value the condition cannot be compared with (a number against a text literal) passes,
  with a warning and a `where_unevaluable` stream fault.

A change event nests compound fields (`Name: {FirstName, LastName}`, `BillingAddress:
{City, ...}`) where SOQL names their parts as fields of their own (`LastName`,
`BillingCity`): the condition reads the parts under their SOQL names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..config.settings import TriggerSettings
from ..events.model import Event
from ..logs import get_logger
from ..salesforce.client import SalesforceClient
from ..soql_engine import SoqlError, WhereCondition, parse_condition

log = get_logger(__name__)

_UNFILTERED = frozenset({"deleted", "undeleted"})


class StreamFilter:
    def __init__(
        self,
        trigger: TriggerSettings,
        client: SalesforceClient,
        count_fault: Callable[[str], None],
    ) -> None:
        self._trigger = trigger
        self._client = client
        self._count_fault = count_fault
        # Validated when the configuration was loaded; parsing again cannot fail.
        self._where: WhereCondition | None = (
            parse_condition(trigger.where) if trigger.where else None
        )

    async def keep(self, events: list[Event]) -> list[Event]:
        """The events that meet the trigger's `where` (all of them without one)."""
        if self._where is None:
            return events
        return [event for event in events if await self._meets(self._where, event)]

    async def _meets(self, where: WhereCondition, event: Event) -> bool:
        if event.change in _UNFILTERED:
            return True
        record = await self._with_fields(where, event)
        if record is None:
            return True  # the record is gone: whether it matched is unknowable
        try:
            return where.holds(record)
        except SoqlError as exc:
            self._count_fault("where_unevaluable")
            log.warning(
                "stream_where_unevaluable",
                trigger=self._trigger.name,
                record_id=event.record_id,
                error=exc.message.strip().splitlines()[-1],
            )
            return True

    async def _with_fields(self, where: WhereCondition, event: Event) -> dict[str, Any] | None:
        """The event's record with every field the condition reads; None when it needed a
        read and the record no longer exists."""
        known = _known_fields(event, self._trigger.channel_kind == "cdc")
        missing = [
            name for name in where.fields if known is not None and name.casefold() not in known
        ]
        record = flat_record(event.record)
        if not missing or event.object is None or event.record_id is None:
            return record  # a field the event lacks and cannot be read is null
        read = await self._client.get_record(event.object, event.record_id, missing)
        if read is None:
            return None
        values = {k: v for k, v in read.items() if k != "attributes"}
        return {**record, **values}


def flat_record(record: dict[str, Any]) -> dict[str, Any]:
    """`record` with each compound field's parts also under their SOQL names."""
    flat = dict(record)
    for name, value in record.items():
        if isinstance(value, dict):
            for part, part_value in value.items():
                flat.setdefault(soql_name(f"{name}.{part}"), part_value)
    return flat


def soql_name(field: str) -> str:
    """A change event's name of a compound field's part as SOQL names it: `Name.LastName` is
    `LastName`, `BillingAddress.City` is `BillingCity`; any other name stays as it is."""
    compound, dot, part = field.partition(".")
    if not dot:
        return field
    if compound == "Name":
        return part
    if compound.endswith("Address"):
        return compound.removesuffix("Address") + part
    return field


def _known_fields(event: Event, cdc: bool) -> set[str] | None:
    """The fields (case-folded) whose value the event itself tells; None: every field."""
    if cdc and event.change == "created":
        return None  # a CDC create carries every field that is not null
    record = flat_record(event.record)
    if cdc and event.change == "updated":
        # Unchanged fields are absent or null; a field set to null is among the changed.
        present = {name.casefold() for name, value in record.items() if value is not None}
        return present | {soql_name(name).casefold() for name in event.changed_fields}
    return {name.casefold() for name in record}
