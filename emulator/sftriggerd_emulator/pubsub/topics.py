"""Which Pub/Sub topic names exist, and which stream and events each one reads.

Pub/Sub serves change events (`/data/ChangeEvents`, `/data/AccountChangeEvent`, custom
`/data/Name__chn` channels) and platform events (`/event/Name__e`), reading the same streams
as the CometD side, so an event has one replay position whichever side delivers it.
PushTopics (`/topic/...`) and generic streaming channels (`/u/...`) exist only on the
Streaming API; Salesforce's Pub/Sub answers them as topics that do not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from sftriggerd_emulator.pubsub.errors import TOPIC_EMPTY, TOPIC_NOT_FOUND, PubSubError
from sftriggerd_emulator.streaming.channels import (
    ChannelView,
    UnknownFilterFieldsError,
    object_of_change_channel,
)
from sftriggerd_emulator.streaming.hub import StreamingHub


@dataclass(frozen=True)
class Topic:
    name: str
    view: ChannelView
    # The object or platform event whose schema the topic's events use; None when several
    # objects share the topic (`/data/ChangeEvents`, custom channels).
    entity: str | None

    @property
    def stream(self) -> str:
        return self.view.stream

    @property
    def kind(self) -> str:
        return self.view.kind


def resolve_topic(hub: StreamingHub, name: str) -> Topic:
    """The topic called `name`; raises PubSubError when Pub/Sub has no such topic."""
    if not name:
        raise PubSubError(grpc.StatusCode.INVALID_ARGUMENT, TOPIC_EMPTY, "Topic name is blank.")
    try:
        view = hub.channels.resolve(name)
    except UnknownFilterFieldsError:
        view = None
    if view is None or view.kind not in ("cdc", "platform_event"):
        raise PubSubError(
            grpc.StatusCode.NOT_FOUND, TOPIC_NOT_FOUND, f"Topic {name} does not exist."
        )
    return Topic(name, view, _entity(view))


def _entity(view: ChannelView) -> str | None:
    if view.kind == "platform_event":
        return view.name.removeprefix("/event/")
    if view.entities is not None and len(view.entities) == 1 and view.name.endswith("ChangeEvent"):
        part = view.name.removeprefix("/data/").removesuffix("ChangeEvent")
        return object_of_change_channel(part)
    return None
