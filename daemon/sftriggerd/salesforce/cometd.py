"""A small long-polling Bayeux (CometD) client on aiohttp: protocol only.

It speaks handshake, connect, subscribe, unsubscribe and disconnect, keeps the server's
advice and cookies, and turns every unsuccessful reply into an exception that says what the
caller must do next (`UnknownClientError`: handshake again; `AuthInvalidError`: log in
again). It knows nothing of Salesforce triggers or replay storage; the streaming source does.

Why not aiocometd/aiosfstream: see README ("Dependencies and why") and
research/cometd-spike.md. In short: they fail on current Python, read `advice.interval`
(milliseconds) as seconds, and drop failed re-subscriptions silently.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ..errors import SalesforceError

Message = dict[str, Any]

# Extra seconds a held connect may take beyond the server's advised timeout before it is
# treated as a stall (the network lost the answer); Salesforce holds for 110 s.
STALL_MARGIN_S = 15.0


class BayeuxError(SalesforceError):
    """An unsuccessful Bayeux reply: `error` is the server's string, `advice` its advice."""

    def __init__(
        self,
        channel: str,
        error: str,
        advice: dict[str, Any] | None = None,
        ext: dict[str, Any] | None = None,
    ) -> None:
        self.channel = channel
        self.error = error
        self.advice = advice or {}
        self.ext = ext or {}
        reason = self.ext.get("sfdc", {}).get("failureReason") if self.ext else None
        detail = f" ({reason})" if reason else ""
        super().__init__(f"{channel} failed: {error}{detail}")

    @property
    def code(self) -> str:
        return self.error.split(":", 1)[0]


class UnknownClientError(BayeuxError):
    """The server forgot this client (routine at Salesforce every few hours): handshake."""


class AuthInvalidError(BayeuxError):
    """The session behind the token ended: log in again, then handshake."""


class TransportError(SalesforceError):
    """The HTTP exchange itself failed: connection error, timeout, non-JSON or 5xx answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


@dataclass
class Advice:
    reconnect: str = "retry"
    interval_ms: int = 0
    timeout_ms: int = 110_000

    def update(self, advice: dict[str, Any]) -> None:
        self.reconnect = str(advice.get("reconnect", self.reconnect))
        self.interval_ms = int(advice.get("interval", self.interval_ms))
        self.timeout_ms = int(advice.get("timeout", self.timeout_ms))


@dataclass
class ConnectResult:
    """What one long-poll brought: the data messages, in the order the server sent them."""

    events: list[Message] = field(default_factory=list)


def classify_failure(reply: Message) -> BayeuxError:
    channel = str(reply.get("channel", "?"))
    error = str(reply.get("error") or "unsuccessful without an error")
    advice = reply.get("advice") if isinstance(reply.get("advice"), dict) else None
    ext = reply.get("ext") if isinstance(reply.get("ext"), dict) else None
    reason = str((ext or {}).get("sfdc", {}).get("failureReason", ""))
    if error.startswith(("401::", "402::Unknown client")) or reason.startswith("401"):
        if "Unknown client" in error:
            return UnknownClientError(channel, error, advice, ext)
        return AuthInvalidError(channel, error, advice, ext)
    if "Unknown client" in error or (advice or {}).get("reconnect") == "handshake":
        return UnknownClientError(channel, error, advice, ext)
    return BayeuxError(channel, error, advice, ext)


class BayeuxClient:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        url: str,
        authorization: Callable[[], Awaitable[str]],
        *,
        proxy: str | None = None,
        request_timeout_s: float = 30.0,
        stall_margin_s: float = STALL_MARGIN_S,
    ) -> None:
        """`http` must have its own cookie jar (the server routes and identifies by cookie);
        `authorization` returns the current `Authorization` header value."""
        self._http = http
        self.url = url.rstrip("/")
        self._authorization = authorization
        self._proxy = proxy
        self._request_timeout_s = request_timeout_s
        self._stall_margin_s = stall_margin_s
        self._ids = itertools.count(1)
        self.client_id: str | None = None
        self.advice = Advice()
        self.subscriptions: set[str] = set()

    async def handshake(self, ext: dict[str, Any] | None = None) -> Message:
        self.client_id = None
        self.subscriptions.clear()
        message: Message = {
            "channel": "/meta/handshake",
            "version": "1.0",
            "minimumVersion": "1.0",
            "supportedConnectionTypes": ["long-polling"],
        }
        if ext:
            message["ext"] = ext
        reply, _ = await self._exchange(message, self._request_timeout_s)
        self.client_id = str(reply["clientId"])
        return reply

    async def subscribe(self, channel: str, ext: dict[str, Any] | None = None) -> Message:
        message: Message = {"channel": "/meta/subscribe", "subscription": channel}
        if ext:
            message["ext"] = ext
        reply, _ = await self._exchange(message, self._request_timeout_s)
        self.subscriptions.add(channel)
        return reply

    async def unsubscribe(self, channel: str) -> Message:
        reply, _ = await self._exchange(
            {"channel": "/meta/unsubscribe", "subscription": channel}, self._request_timeout_s
        )
        self.subscriptions.discard(channel)
        return reply

    async def connect(self) -> ConnectResult:
        """One long-poll; raises on failure, returns the events that came with the answer."""
        timeout_s = self.advice.timeout_ms / 1000 + self._stall_margin_s
        message: Message = {"channel": "/meta/connect", "connectionType": "long-polling"}
        _, events = await self._exchange(message, timeout_s)
        return ConnectResult(events=events)

    async def disconnect(self) -> None:
        if self.client_id is None:
            return
        try:
            await self._exchange({"channel": "/meta/disconnect"}, 5.0)
        finally:
            self.client_id = None
            self.subscriptions.clear()

    async def _exchange(self, message: Message, timeout_s: float) -> tuple[Message, list[Message]]:
        message = {**message, "id": str(next(self._ids))}
        if self.client_id is not None:
            message["clientId"] = self.client_id
        replies = await self._post([message], timeout_s)
        reply: Message | None = None
        events: list[Message] = []
        for item in replies:
            if item.get("channel") == message["channel"] and str(item.get("id")) == message["id"]:
                reply = item
            elif not str(item.get("channel", "")).startswith("/meta/") and "data" in item:
                events.append(item)
        if reply is None:
            raise TransportError(f"no reply to {message['channel']} in the server's answer")
        if isinstance(reply.get("advice"), dict):
            self.advice.update(reply["advice"])
        if not reply.get("successful", False):
            raise classify_failure(reply)
        return reply, events

    async def _post(self, messages: list[Message], timeout_s: float) -> list[Message]:
        headers = {"Authorization": await self._authorization(), "Content-Type": "application/json"}
        try:
            async with self._http.post(
                self.url,
                data=json.dumps(messages),
                headers=headers,
                proxy=self._proxy,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as response:
                text = await response.text()
                status = response.status
        except TimeoutError as exc:
            raise TransportError(f"no answer within {timeout_s:.0f}s (stalled long-poll)") from exc
        except aiohttp.ClientError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        if status != 200:
            raise TransportError(f"HTTP {status} from the Streaming API", status)
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise TransportError("the Streaming API answered something that is not JSON") from exc
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            raise TransportError("the Streaming API answered JSON that is not a message list")
        return body
