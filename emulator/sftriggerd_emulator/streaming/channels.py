"""Channel names: which stream a subscription reads and which of its events it admits.

| channel | stream | admits |
|---|---|---|
| `/data/ChangeEvents` | the change stream | every object |
| `/data/AccountChangeEvent`, `/data/Foo__ChangeEvent` | the change stream | that object |
| `/data/Sales__chn` (defined with its objects) | the change stream | the listed objects |
| `/event/Low_Ink__e` | its own stream | all |
| `/topic/InvoiceUpdates` (a PushTopic record) | its own stream | all |
| `/topic/InvoiceUpdates?Status__c=Open` | the topic's stream | records with those values |
| `/u/Notifications` (a StreamingChannel) | its own stream | all |

Names are case-sensitive, as on Salesforce. Any object may have a change channel, because the
emulator accepts any object name, unless `/_emulator/cdc` took it out of the selection;
platform events need no definition either (publishing defines them), but PushTopics, generic
channels and `__chn` channels must exist first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

from sftriggerd_emulator.streaming.streams import CDC_STREAM, StoredEvent

StreamKind = Literal["cdc", "platform_event", "pushtopic", "generic"]

_NAME = r"[A-Za-z][A-Za-z0-9_]*"
_OBJECT_CHANNEL = re.compile(rf"/data/({_NAME})ChangeEvent")
_CUSTOM_CDC_CHANNEL = re.compile(rf"/data/{_NAME}__chn")
_EVENT_CHANNEL = re.compile(rf"/event/({_NAME})")
_TOPIC_CHANNEL = re.compile(rf"/topic/({_NAME})")
_GENERIC_CHANNEL = re.compile(rf"/u/({_NAME})")
# Salesforce's standard platform events; custom ones end in __e.
STANDARD_EVENTS = frozenset(
    {
        "BatchApexErrorEvent",
        "FlowExecutionErrorEvent",
        "LoginEventStream",
        "LogoutEventStream",
        "ApiEventStream",
        "LightningUriEventStream",
    }
)


@dataclass(frozen=True)
class ChannelView:
    """What one channel name delivers: events of `stream`, all or those of `entities`."""

    name: str
    stream: str
    kind: StreamKind
    entities: frozenset[str] | None = None
    # PushTopic filters (`?Status__c=Open`): field -> value the event's sobject must hold.
    filters: tuple[tuple[str, str], ...] = ()

    def admits(self, event: StoredEvent) -> bool:
        if self.entities is not None and event.entity not in self.entities:
            return False
        sobject = event.data.get("sobject")
        if not isinstance(sobject, dict):
            sobject = {}  # a raw message (`/_emulator/publish`) may have anything here
        return all(_filter_text(sobject.get(name)) == value for name, value in self.filters)


class UnknownFilterFieldsError(Exception):
    """A PushTopic filter names fields the topic does not select."""

    def __init__(self, fields: list[str]) -> None:
        super().__init__(", ".join(fields))
        self.fields = fields


def _filter_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def stream_kind(stream: str) -> StreamKind:
    if stream == CDC_STREAM:
        return "cdc"
    if stream.startswith("/event/"):
        return "platform_event"
    if stream.startswith("/topic/"):
        return "pushtopic"
    return "generic"


def object_of_change_channel(object_part: str) -> str:
    """`Account` -> `Account`, `Employee__` -> `Employee__c` (how custom objects are named)."""
    return object_part + "c" if object_part.endswith("__") else object_part


def change_channel_of(object_name: str) -> str:
    """The per-object change channel: `/data/AccountChangeEvent`, `/data/Foo__ChangeEvent`."""
    base = object_name[:-1] if object_name.endswith("__c") else object_name
    return f"/data/{base}ChangeEvent"


def is_platform_event(name: str) -> bool:
    return name.endswith("__e") or name in STANDARD_EVENTS


class ChannelNames:
    """Resolves channel names against what is defined (custom channels, topics, generic)."""

    def __init__(self, topic_fields: Callable[[str], frozenset[str] | None]) -> None:
        """`topic_fields` gives a PushTopic's selected field names, or None for no topic."""
        self._topic_fields = topic_fields
        self.custom_cdc: dict[str, frozenset[str] | None] = {}
        self.generic: set[str] = set()
        # Objects taken out of Change Data Capture (`/_emulator/cdc`): their own change
        # channel does not exist, as on an org where they are not selected entities.
        self.unselected: frozenset[str] = frozenset()

    def resolve(self, channel: str) -> ChannelView | None:
        """The view behind `channel`, or None when no such channel exists."""
        if channel == CDC_STREAM:
            return ChannelView(channel, CDC_STREAM, "cdc")
        if _CUSTOM_CDC_CHANNEL.fullmatch(channel):
            if channel not in self.custom_cdc:
                return None
            return ChannelView(channel, CDC_STREAM, "cdc", self.custom_cdc[channel])
        match = _OBJECT_CHANNEL.fullmatch(channel)
        if match:
            entity = object_of_change_channel(match.group(1))
            if entity.casefold() in self.unselected:
                return None
            return ChannelView(channel, CDC_STREAM, "cdc", frozenset({entity}))
        match = _EVENT_CHANNEL.fullmatch(channel)
        if match:
            found = is_platform_event(match.group(1))
            return ChannelView(channel, channel, "platform_event") if found else None
        base, _, query = channel.partition("?")
        match = _TOPIC_CHANNEL.fullmatch(base)
        if match:
            return self._topic_view(channel, base, match.group(1), query)
        if channel in self.generic:
            return ChannelView(channel, channel, "generic")
        return None

    def _topic_view(self, channel: str, base: str, topic: str, query: str) -> ChannelView | None:
        """A PushTopic channel; raises UnknownFilterFieldsError for a filter it cannot apply."""
        selected = self._topic_fields(topic)
        if selected is None:
            return None
        filters = tuple(parse_qsl(query, keep_blank_values=True))
        unknown = [name for name, _ in filters if name.casefold() not in selected]
        if unknown:
            raise UnknownFilterFieldsError(unknown)
        return ChannelView(channel, base, "pushtopic", filters=filters)

    def define(self, channel: str, entities: list[str] | None) -> None:
        """Defines a generic `/u/` channel or a custom `/data/..__chn` change channel."""
        if _GENERIC_CHANNEL.fullmatch(channel):
            self.generic.add(channel)
        elif _CUSTOM_CDC_CHANNEL.fullmatch(channel):
            self.custom_cdc[channel] = None if entities is None else frozenset(entities)
        else:
            raise ValueError(
                f"'{channel}' is neither a generic channel (/u/Name) nor a custom change"
                " channel (/data/Name__chn)"
            )
