"""A bare-hands Bayeux client for the Streaming API tests: every request and reply visible.

The tests check the wire, so this client does nothing clever: it sends the messages it is
told to send, keeps cookies as a browser would (an unsafe jar, because the emulator listens on
an IP address and aiohttp's default jar refuses cookies from those) and returns raw replies.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.support.sfclient import Answer, answer_of

STREAMING_VERSION = "60.0"
JSON_CONTENT_TYPE = "application/json;charset=UTF-8"


@dataclass
class Bayeux:
    http: aiohttp.ClientSession
    url: str
    token: str | None
    client_id: str | None = None

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)

    @property
    def endpoint(self) -> str:
        return f"{self.url}/cometd/{STREAMING_VERSION}"

    def next_id(self) -> str:
        return str(next(self._ids))

    async def send(self, *messages: dict[str, Any], suffix: str = "") -> Answer:
        headers = {} if self.token is None else {"Authorization": f"Bearer {self.token}"}
        url = self.endpoint + suffix
        async with self.http.post(url, json=list(messages), headers=headers) as response:
            return await answer_of(response)

    async def replies(self, *messages: dict[str, Any], suffix: str = "") -> list[dict[str, Any]]:
        answer = await self.send(*messages, suffix=suffix)
        assert answer.status == 200, answer.body
        assert answer.headers["Content-Type"] == JSON_CONTENT_TYPE
        assert isinstance(answer.body, list)
        return answer.body

    def handshake_message(self) -> dict[str, Any]:
        return {
            "channel": "/meta/handshake",
            "version": "1.0",
            "minimumVersion": "1.0",
            "supportedConnectionTypes": ["long-polling"],
            "id": self.next_id(),
        }

    def connect_message(self) -> dict[str, Any]:
        return {
            "channel": "/meta/connect",
            "clientId": self.client_id,
            "connectionType": "long-polling",
            "id": self.next_id(),
        }

    def subscribe_message(self, channel: str, replay: Any = None) -> dict[str, Any]:
        message: dict[str, Any] = {
            "channel": "/meta/subscribe",
            "clientId": self.client_id,
            "subscription": channel,
            "id": self.next_id(),
        }
        if replay is not None:
            message["ext"] = {"replay": {channel: replay}}
        return message

    async def handshake(self) -> dict[str, Any]:
        [reply] = await self.replies(self.handshake_message())
        assert reply["successful"] is True, reply
        self.client_id = reply["clientId"]
        return reply

    async def connect(self) -> list[dict[str, Any]]:
        """Events then the ack; asserts the ack is last and successful."""
        replies = await self.replies(self.connect_message())
        assert replies[-1]["channel"] == "/meta/connect", replies
        return replies

    async def subscribe(self, channel: str, replay: Any = None) -> dict[str, Any]:
        [reply] = await self.replies(self.subscribe_message(channel, replay))
        return reply

    async def start(self, *channels: str, replay: Any = None) -> None:
        """Handshake, first connect, subscriptions: the usual opening."""
        await self.handshake()
        await self.connect()
        for channel in channels:
            reply = await self.subscribe(channel, replay)
            assert reply["successful"] is True, reply

    async def events(self) -> list[dict[str, Any]]:
        """The events of one (possibly held) connect."""
        replies = await self.connect()
        assert replies[-1]["successful"] is True, replies[-1]
        return replies[:-1]


def cookie_jar() -> aiohttp.CookieJar:
    return aiohttp.CookieJar(unsafe=True)


def replay_ids(events: list[dict[str, Any]]) -> list[int]:
    return [int(event["data"]["event"]["replayId"]) for event in events]


def headers_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event["data"]["payload"]["ChangeEventHeader"] for event in events]
