"""A Pub/Sub event's Avro payload, decoded into the payload the CometD side carries for it.

So the normalisers read one shape whatever the transport, the decoded payload is the
CometD `data.payload` of the same event:
- a change event's ChangeEventHeader lists changedFields, nulledFields and diffFields as
  field names (`bitmaps`), and its body holds only the fields the change carries: Pub/Sub
  sends every field of the schema, unchanged ones null, where CometD leaves them out, so a
  null field stays only when nulledFields names it (nested fields of a compound alike);
- datetimes (epoch milliseconds) become ISO strings: `2026-11-28T10:15:02Z` in a change
  event's body (`.mmm` only when there are milliseconds), `2026-11-28T10:15:02.000Z` in a
  platform event, as CometD writes each; dates (days, or milliseconds, since the epoch)
  become `2026-11-28`; header numbers such as commitTimestamp stay numbers, as on CometD;
- unions are unwrapped (fastavro returns the branch's value) and compound fields stay
  nested records (`BillingAddress: {City: ...}`), as CometD nests them.

Nothing but `MalformedMessage` (its subclasses here) escapes, whatever bytes arrive.
"""

from __future__ import annotations

import base64
import decimal
import io
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from fastavro import parse_schema, schemaless_reader

from ...events.payload import format_time
from ...events.streamed import MalformedMessage
from .bitmaps import BITMAP_FIELDS, field_names
from .schema import HEADER, EventSchema, FieldSpec, UnusableSchema, read_schema

__all__ = [
    "PayloadDecoder",
    "RefusedSchema",
    "SchemaCache",
    "SchemaFailures",
    "UndecodablePayload",
    "UnusableSchema",
    "decode_payload",
    "decoder_for",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TimeText = Callable[[datetime], str]


class UndecodablePayload(MalformedMessage):
    """Payload bytes that are not one Avro record of the event's schema."""


class RefusedSchema(MalformedMessage):
    """A schema the server refused again and again: its events cannot be read for now."""


class PayloadDecoder:
    """Decodes the payloads of one schema (parsed once: keep one per schema id)."""

    def __init__(self, schema_json: str) -> None:
        self.schema: EventSchema = read_schema(schema_json)
        try:
            self._parsed = parse_schema(self.schema.schema)
        except Exception as exc:  # fastavro raises many kinds for a schema it rejects
            raise UnusableSchema(f"fastavro cannot use the event schema: {exc}") from None

    def decode(self, payload: bytes) -> dict[str, Any]:
        record = self._read(payload)
        try:
            if self.schema.is_change_event:
                return self._change_event(record)
            fields = self.schema.fields
            return {spec.name: _value(spec, record.get(spec.name), format_time) for spec in fields}
        except MalformedMessage:
            raise
        # A record of a valid schema can still hold what the shaping does not expect (a
        # null ChangeEventHeader in a union with null): it is poison, never a crash loop.
        except Exception as exc:
            raise UndecodablePayload(
                f"payload cannot be shaped: {type(exc).__name__}: {exc}"[:300]
            ) from None

    def _read(self, payload: bytes) -> dict[str, Any]:
        buffer = io.BytesIO(payload)
        try:
            record = schemaless_reader(buffer, self._parsed, None)
        # fastavro's reader raises whatever its reading hits on bad bytes (EOFError,
        # IndexError, UnicodeDecodeError, ValueError, MemoryError...): all mean the same.
        except Exception as exc:
            raise UndecodablePayload(
                f"payload is not an Avro record of the schema: {type(exc).__name__}: {exc}"[:300]
            ) from None
        if buffer.tell() != len(payload):
            raise UndecodablePayload(
                f"payload has {len(payload) - buffer.tell()} bytes after its Avro record"
            )
        if not isinstance(record, dict):
            raise UndecodablePayload("payload is not an Avro record")
        return record

    def _change_event(self, record: dict[str, Any]) -> dict[str, Any]:
        fields = self.schema.fields
        raw_header = record.get(HEADER)
        if not isinstance(raw_header, dict):
            raise UndecodablePayload(f"{HEADER} is not a record: {type(raw_header).__name__}")
        header = dict(raw_header)
        for name in BITMAP_FIELDS:
            if name in header:
                header[name] = field_names(name, header[name], fields)
        nulled = set(header.get("nulledFields") or ())
        payload: dict[str, Any] = {HEADER: _plain(header, format_time)}
        for spec in fields[1:]:
            value = record.get(spec.name)
            if spec.form == "compound" and isinstance(value, dict):
                parts = {
                    part.name: _value(part, value.get(part.name), _cdc_time)
                    for part in spec.parts
                    if value.get(part.name) is not None or f"{spec.name}.{part.name}" in nulled
                }
                if parts or spec.name in nulled:
                    payload[spec.name] = parts
            elif value is not None or spec.name in nulled:
                payload[spec.name] = _value(spec, value, _cdc_time)
        return payload


def _cdc_time(moment: datetime) -> str:
    """`2019-09-25T10:32:28Z`: how CometD change events write datetimes (milliseconds only
    when there are some)."""
    text = format_time(moment)
    return text.removesuffix(".000Z") + "Z" if text.endswith(".000Z") else text


def _value(spec: FieldSpec, value: Any, time_text: TimeText) -> Any:
    if value is None:
        return None
    try:
        if spec.form == "datetime" and isinstance(value, int):
            return time_text(_EPOCH + timedelta(milliseconds=value))
        if spec.form == "date_days" and isinstance(value, int):
            return (_EPOCH + timedelta(days=value)).date().isoformat()
        if spec.form == "date_ms" and isinstance(value, int):
            return (_EPOCH + timedelta(milliseconds=value)).date().isoformat()
    except OverflowError:
        raise UndecodablePayload(f"{spec.name} holds a time out of range: {value}") from None
    if spec.form == "compound" and isinstance(value, dict):
        return {part.name: _value(part, value.get(part.name), time_text) for part in spec.parts}
    return _plain(value, time_text)


def _plain(value: Any, time_text: TimeText) -> Any:
    """A decoded value as JSON can carry it: logical types (a schema with `logicalType`
    makes fastavro return datetimes, dates, decimals, UUIDs) and bytes become text."""
    if isinstance(value, dict):
        return {key: _plain(item, time_text) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item, time_text) for item in value]
    if isinstance(value, datetime):
        return time_text(value if value.tzinfo else value.replace(tzinfo=UTC))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)  # UUIDs, times of day


class SchemaCache:
    """Decoders by schema id, the most recently used kept (Salesforce fixes a schema id's
    schema, so an entry never goes stale)."""

    def __init__(self, limit: int = 256) -> None:
        self._limit = limit
        self._decoders: OrderedDict[str, PayloadDecoder] = OrderedDict()

    def get(self, schema_id: str) -> PayloadDecoder | None:
        decoder = self._decoders.get(schema_id)
        if decoder is not None:
            self._decoders.move_to_end(schema_id)
        return decoder

    def add(self, schema_id: str, schema_json: str) -> PayloadDecoder:
        """The decoder of `schema_json`, kept as `schema_id`'s; raises `UnusableSchema`."""
        decoder = decoder_for(schema_json)
        self._decoders[schema_id] = decoder
        self._decoders.move_to_end(schema_id)
        while len(self._decoders) > self._limit:
            self._decoders.popitem(last=False)
        return decoder

    def __contains__(self, schema_id: object) -> bool:
        return schema_id in self._decoders

    def __len__(self) -> int:
        return len(self._decoders)


class SchemaFailures:
    """Schemas that could not be had (unusable, or refused until given up), by id, each for
    `hold_s` after its failure: their events are unreadable at once, so a burst of them costs
    one GetSchema, not one each. Bounded in time and in number (schema ids come from outside),
    the oldest failure forgotten first."""

    def __init__(
        self, hold_s: float, limit: int = 256, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.hold_s = hold_s
        self._limit = limit
        self._clock = clock
        # schema id -> (until, the failure's kind, its text)
        self._failures: OrderedDict[str, tuple[float, type[MalformedMessage], str]] = OrderedDict()

    def remember(self, schema_id: str, failure: MalformedMessage) -> None:
        if self.hold_s <= 0:
            return
        self._failures[schema_id] = (self._clock() + self.hold_s, type(failure), str(failure))
        self._failures.move_to_end(schema_id)
        while len(self._failures) > self._limit:
            self._failures.popitem(last=False)

    def recalled(self, schema_id: str) -> MalformedMessage | None:
        """The failure remembered for `schema_id` (a new exception of its kind and text), or
        None when there is none or it is older than `hold_s`."""
        remembered = self._failures.get(schema_id)
        if remembered is None:
            return None
        until_s, kind, text = remembered
        if self._clock() >= until_s:
            del self._failures[schema_id]
            return None
        return kind(text)

    def __len__(self) -> int:
        return len(self._failures)


@lru_cache(maxsize=64)
def decoder_for(schema_json: str) -> PayloadDecoder:
    """The decoder of a schema (parsed once per schema text); raises `UnusableSchema`."""
    return PayloadDecoder(schema_json)


def decode_payload(schema_json: str, payload: bytes) -> dict[str, Any]:
    """The CometD-shaped payload of a Pub/Sub event; raises `MalformedMessage` (its
    subclasses `UnusableSchema`, `UndecodablePayload`, `UnreadableBitmap`) and nothing else."""
    return decoder_for(schema_json).decode(payload)
