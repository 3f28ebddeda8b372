"""Stored events as Pub/Sub ConsumerEvents: Avro payloads, schema ids, opaque replay ids.

A schema id is a fingerprint of the schema (MD5 of its JSON, base64url, 22 characters, the
shape of Salesforce's), so the same schema always has the same id, across restarts too, and
`GetSchema` answers every id an event was ever sent with. The org learns fields as they are
written, so an object's schema grows; an event keeps the schema it was first sent with
(encodings are kept per event), as a Salesforce event keeps the schema it was published
with.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import uuid
from typing import Any

from fastavro import parse_schema, schemaless_writer

from sftriggerd.salesforce.pubsub import pubsub_api_pb2 as pb
from sftriggerd_emulator.pubsub.replay import encode_replay_id
from sftriggerd_emulator.pubsub.schemas import (
    EventRecord,
    FieldTypes,
    change_event_record,
    platform_event_record,
    topic_schema,
)
from sftriggerd_emulator.streaming.channels import stream_kind
from sftriggerd_emulator.streaming.streams import StoredEvent, Stream


def schema_fingerprint(schema: dict[str, Any]) -> str:
    text = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    digest = hashlib.md5(text.encode(), usedforsecurity=False).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class EventCodec:
    """Encodes events once each and remembers every schema it used."""

    def __init__(self, types: FieldTypes) -> None:
        self._types = types
        self._schemas: dict[str, str] = {}  # schema id -> schema JSON
        self._parsed: dict[str, Any] = {}
        # stream -> position -> the event as first sent
        self._events: dict[str, dict[int, pb.ConsumerEvent]] = {}

    def schema_json(self, schema_id: str) -> str | None:
        return self._schemas.get(schema_id)

    def register(self, schema: dict[str, Any]) -> str:
        schema_id = schema_fingerprint(schema)
        if schema_id not in self._schemas:
            self._parsed[schema_id] = parse_schema(schema)
            self._schemas[schema_id] = json.dumps(schema, separators=(",", ":"))
        return schema_id

    def topic_schema_id(self, entity: str, kind: str) -> str:
        return self.register(topic_schema(entity, kind, self._types))

    def consumer_event(self, stream: Stream, event: StoredEvent) -> pb.ConsumerEvent:
        kept = self._events.setdefault(stream.name, {})
        encoded = kept.get(event.replay_id)
        if encoded is None:
            encoded = self._encode(stream.name, event)
            kept[event.replay_id] = encoded
            if len(kept) > 2 * len(stream) + 100:
                self._forget_dropped(kept, stream.oldest_replay_id)
        return encoded

    @staticmethod
    def _forget_dropped(kept: dict[int, pb.ConsumerEvent], oldest: int | None) -> None:
        """Drops the encodings of events retention has removed from the stream."""
        for position in [p for p in kept if oldest is None or p < oldest]:
            del kept[position]

    def _encode(self, stream: str, event: StoredEvent) -> pb.ConsumerEvent:
        data = event.data
        payload = data.get("payload")
        payload = payload if isinstance(payload, dict) else {}
        if stream_kind(stream) == "cdc":
            built: EventRecord = change_event_record(event.entity, payload, self._types)
        else:
            built = platform_event_record(event.entity, payload, self._types)
        schema_id = self.register(built.schema)
        buffer = io.BytesIO()
        schemaless_writer(buffer, self._parsed[schema_id], built.record)
        return pb.ConsumerEvent(
            event=pb.ProducerEvent(
                id=_event_id(stream, event), schema_id=schema_id, payload=buffer.getvalue()
            ),
            replay_id=encode_replay_id(stream, event.replay_id),
        )


def _event_id(stream: str, event: StoredEvent) -> str:
    """A platform event's EventUuid; for others a UUID fixed by the event's place."""
    envelope = event.data.get("event")
    uuid_text = envelope.get("EventUuid") if isinstance(envelope, dict) else None
    if isinstance(uuid_text, str) and uuid_text:
        return uuid_text
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sftriggerd-emulator:{stream}:{event.replay_id}"))
