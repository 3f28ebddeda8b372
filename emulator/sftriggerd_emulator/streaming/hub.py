"""The streaming side's state and the one place events enter it.

Record changes from the org, platform events and generic pushes all end in `publish`: the
event is stored in its stream (and on disk), then every held connect is nudged to look for
it. Delivery reads the streams through each client's subscription cursors.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sftriggerd_emulator.context import EmulatorContext, RecordChange
from sftriggerd_emulator.ids import make_id
from sftriggerd_emulator.streaming import payloads
from sftriggerd_emulator.streaming.activity import SubscriberActivity
from sftriggerd_emulator.streaming.channels import ChannelNames, StreamKind, stream_kind
from sftriggerd_emulator.streaming.clients import Client, ClientRegistry
from sftriggerd_emulator.streaming.hostile import HostileControls
from sftriggerd_emulator.streaming.pushtopics import PUSHTOPIC_OBJECT, PushTopic, PushTopics
from sftriggerd_emulator.streaming.store import StreamingStore
from sftriggerd_emulator.streaming.streams import CDC_STREAM, StoredEvent, Stream

# Who publishes what the emulator itself makes up (gap events, control-call events).
ADMIN_USER_ID = make_id("005", 1)
STREAMING_CHANNEL_OBJECT = "StreamingChannel"
# Objects whose records are definitions or events, not data: no change events for them.
_NOT_CHANGE_TRACKED = frozenset({PUSHTOPIC_OBJECT, STREAMING_CHANNEL_OBJECT})
MAX_EVENTS_PER_ANSWER = 500
# `publish_raw`'s default: the stream's next replay id goes into `event.replayId`.
FILL_REPLAY_ID: Any = object()


@dataclass(frozen=True)
class GenericChannel:
    name: str
    channel_id: str


class StreamingHub:
    def __init__(self, ctx: EmulatorContext, store: StreamingStore | None) -> None:
        self.ctx = ctx
        self.store = store
        settings = ctx.settings
        self.clients = ClientRegistry(settings)
        self.topics = PushTopics()
        self.channels = ChannelNames(self.topics.selected_fields)
        self.generic_ids: dict[str, str] = {}  # StreamingChannel id -> /u/ name
        self.streams: dict[str, Stream] = {}
        self.starved: set[str] = set()
        self.hostile = HostileControls()
        self.activity = SubscriberActivity()
        # Called after every stored event: other transports (Pub/Sub) wake their streams.
        self.publish_listeners: list[Callable[[], None]] = []
        self._transaction_key = ""
        self._sequence_number = 0
        self._commit_number = 0
        self._retention_s: dict[StreamKind, float] = {
            "cdc": settings.retention_cdc_s,
            "platform_event": settings.retention_platform_event_s,
            "pushtopic": settings.retention_pushtopic_s,
            "generic": settings.retention_generic_s,
        }
        if store is not None:
            self._load(store)

    def _load(self, store: StreamingStore) -> None:
        snapshot = store.load()
        for name in snapshot.last_replay_ids.keys() | snapshot.events.keys():
            self.streams[name] = Stream(
                name,
                self._retention_s[stream_kind(name)],
                snapshot.last_replay_ids.get(name, 0),
                snapshot.events.get(name, ()),
            )
        for definition in snapshot.definitions.get("pushtopic", {}).values():
            self.topics.define(PushTopic.from_record(definition))
        for name, definition in snapshot.definitions.get("channel", {}).items():
            self.channels.define(name, definition.get("entities"))
            if definition.get("id"):
                self.generic_ids[str(definition["id"])] = name

    # -- streams ---------------------------------------------------------------------------

    def stream(self, name: str) -> Stream:
        """The stream, created empty on first use; purged of what retention has dropped."""
        stream = self.streams.get(name)
        if stream is None:
            stream = Stream(name, self._retention_s[stream_kind(name)])
            self.streams[name] = stream
        dropped = stream.purge(self.ctx.clock.now())
        if dropped and self.store is not None:
            self.store.remove_events(name, dropped)
        return stream

    def publish(self, stream_name: str, entity: str, data: dict[str, Any]) -> StoredEvent:
        stream = self.stream(stream_name)
        event = stream.append(self.ctx.clock.now(), entity, data)
        if self.store is not None:
            self.store.add_event(stream_name, event)
        self._announce()
        return event

    def _announce(self) -> None:
        self.clients.nudge_all()
        for listener in self.publish_listeners:
            listener()

    def publish_raw(
        self, stream_name: str, entity: str, data: dict[str, Any], replay_id: Any = FILL_REPLAY_ID
    ) -> StoredEvent:
        """Publishes `data` as given (`/_emulator/publish`): with the stream's next replay id
        filled in (`FILL_REPLAY_ID`), without any (None), or with `replay_id` as written,
        which also becomes the event's place in the stream when it is a larger integer."""
        if replay_id is FILL_REPLAY_ID:
            return self.publish(stream_name, entity, data)
        raw = copy.deepcopy(data)
        if replay_id is not None:
            if not isinstance(raw.get("event"), dict):
                raw["event"] = {}
            raw["event"]["replayId"] = replay_id
        # Only what SQLite can keep as a replay id becomes the event's place in the stream.
        position = replay_id if type(replay_id) is int and replay_id < 2**63 else None
        stream = self.stream(stream_name)
        event = stream.append(
            self.ctx.clock.now(), entity, raw, fill_replay_id=False, replay_id=position
        )
        if self.store is not None:
            self.store.add_event(stream_name, event)
        self._announce()
        return event

    def drop_before(self, replay_id: int, stream: str | None = None) -> int:
        """Drops events below `replay_id` in `stream` or every stream, as if aged out."""
        dropped = 0
        for name in [stream] if stream is not None else list(self.streams):
            removed = self.stream(name).drop_before(replay_id)
            if removed and self.store is not None:
                self.store.remove_events(name, removed)
            dropped += len(removed)
        return dropped

    # -- delivery --------------------------------------------------------------------------

    def has_pending(self, client: Client) -> bool:
        return any(
            sub.pending(self.stream(sub.view.stream))
            for name, sub in client.subscriptions.items()
            if name not in self.starved
        )

    def take_messages(self, client: Client) -> list[dict[str, Any]]:
        """The Bayeux messages of every event due to `client`, moving its cursors."""
        messages: list[dict[str, Any]] = []
        for name, sub in client.subscriptions.items():
            room = MAX_EVENTS_PER_ANSWER - len(messages)
            if name in self.starved or room <= 0:
                continue
            for event in sub.take(self.stream(sub.view.stream), room):
                messages.append({"data": event.data, "channel": name})
        self.ctx.stats["events_delivered"] += len(messages)
        return messages

    # -- record changes --------------------------------------------------------------------

    def on_record_change(self, change: RecordChange) -> None:
        """The org's listener: definitions, platform events published as records, CDC."""
        if change.object_name == PUSHTOPIC_OBJECT:
            self._learn_topics(change)
            return
        if change.object_name == STREAMING_CHANNEL_OBJECT:
            self._learn_generic_channels(change)
            return
        if change.object_name.endswith("__e"):
            if change.change_type == "CREATE":
                for record in change.records:
                    self.publish_platform_event(change.object_name, record, change.commit_user)
            return
        self._publish_changes(change)
        for topic in self.topics.topics():
            for event_type, sobject in topic.events_for(change):
                data = payloads.pushtopic_event(event_type, sobject, change.commit_time)
                self.publish(f"/topic/{topic.name}", topic.name, data)

    def _publish_changes(self, change: RecordChange) -> None:
        if change.object_name in _NOT_CHANGE_TRACKED:
            return
        for record_ids, body in payloads.change_bodies(change):
            header = self._next_header(change.transaction_key)
            data = payloads.change_event(
                change.object_name,
                change.change_type,
                record_ids,
                body,
                change,
                header,
                commit_time=change.commit_time,
                commit_user=change.commit_user,
            )
            self.publish(CDC_STREAM, change.object_name, data)

    def _next_header(self, transaction_key: str) -> payloads.ChangeHeader:
        """Sequence numbers count events within one transaction, across its objects."""
        if transaction_key != self._transaction_key or not transaction_key:
            self._transaction_key = transaction_key
            self._sequence_number = 0
        self._sequence_number += 1
        # An SCN-like number: grows with time, and within a millisecond with each event.
        moment = payloads.epoch_ms(self.ctx.clock.now()) * 1_000
        self._commit_number = max(self._commit_number + 1, moment)
        return payloads.ChangeHeader(self._sequence_number, self._commit_number)

    def publish_gap(
        self, object_name: str, change_type: str, record_ids: tuple[str, ...]
    ) -> StoredEvent:
        """A header-only gap or overflow event (sequence number always 1)."""
        header = self._next_header("")
        header = payloads.ChangeHeader(1, header.commit_number)
        data = payloads.change_event(
            object_name,
            change_type,
            record_ids,
            {},
            None,
            header,
            commit_time=self.ctx.clock.now(),
            commit_user=ADMIN_USER_ID,
        )
        return self.publish(CDC_STREAM, object_name, data)

    def publish_platform_event(
        self, event_name: str, payload: Mapping[str, Any], user_id: str
    ) -> StoredEvent:
        data = payloads.platform_event(
            event_name,
            {k: v for k, v in payload.items() if k not in _RECORD_SYSTEM_FIELDS},
            created=self.ctx.clock.now(),
            created_by=user_id[:15],
            event_uuid=str(uuid.uuid4()),
        )
        return self.publish(f"/event/{event_name}", event_name, data)

    def publish_generic(self, channel: str, payload: str) -> StoredEvent:
        data = payloads.generic_event(payload, self.ctx.clock.now())
        return self.publish(channel, channel, data)

    # -- definitions -----------------------------------------------------------------------

    def _learn_topics(self, change: RecordChange) -> None:
        for touched in self.topics.learn(change):
            if self.store is None:
                continue
            if isinstance(touched, str):
                self.store.remove_definition("pushtopic", touched)
            else:
                self.store.put_definition("pushtopic", touched.name, touched.definition())

    def _learn_generic_channels(self, change: RecordChange) -> None:
        if change.change_type == "DELETE":
            return
        for record_id, record in zip(change.record_ids, change.records, strict=False):
            name = str(record.get("Name") or "")
            if name.startswith("/u/"):
                self.define_channel(name, None, channel_id=record_id)

    def define_channel(
        self, name: str, entities: list[str] | None, channel_id: str | None = None
    ) -> GenericChannel:
        """Defines `/u/Name` or `/data/Name__chn`; raises ValueError for other names."""
        self.channels.define(name, entities)
        known = next((key for key, value in self.generic_ids.items() if value == name), None)
        channel_id = channel_id or known or make_id("0M6", len(self.generic_ids) + 1)
        if name.startswith("/u/"):
            self.generic_ids[channel_id] = name
        if self.store is not None:
            definition = {"entities": entities, "id": channel_id}
            self.store.put_definition("channel", name, definition)
        return GenericChannel(name, channel_id)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


# Fields every record has that a platform event published as a record does not carry.
_RECORD_SYSTEM_FIELDS = frozenset(
    {
        "Id",
        "IsDeleted",
        "CreatedDate",
        "CreatedById",
        "LastModifiedDate",
        "LastModifiedById",
        "SystemModstamp",
    }
)
