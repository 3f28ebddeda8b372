"""A small long-polling Bayeux (CometD) client on aiohttp: protocol only.

It speaks handshake, connect, subscribe, unsubscribe and disconnect, keeps the server's
advice and cookies, and turns every unsuccessful reply into an exception that says what the
caller must do next (`UnknownClientError`: handshake again; `AuthInvalidError`: log in
again). It knows nothing of Salesforce triggers or replay storage; the streaming source does.

Why not aiocometd/aiosfstream: see docs/architecture.md ("Why not aiosfstream"). In short:
they fail on current Python, read `advice.interval` (milliseconds) as seconds, and drop
failed re-subscriptions silently.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ..errors import SalesforceError
from ..urls import strip_userinfo

Message = dict[str, Any]

# Extra seconds a held connect may take beyond the server's advised timeout before it is
# treated as a stall (the network lost the answer); Salesforce holds for 110 s.
STALL_MARGIN_S = 15.0

# Bounds on the server's advice. Salesforce advises `interval: 0` and `timeout: 110000`; an
# answer outside these bounds is a broken or hostile peer, and obeying it would park the
# client for hours (interval) or make a stall undetectable (timeout).
MAX_INTERVAL_MS = 60_000
MAX_TIMEOUT_MS = 300_000
RECONNECT_ADVICE = frozenset({"retry", "handshake", "none"})
# The longest server text quoted in an error (it reaches logs and the status page).
MAX_ERROR_TEXT = 500


def _quoted(value: object) -> str:
    """A server-sent value as error text: a string, bounded, with no URL user-info."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) > MAX_ERROR_TEXT:
        text = text[:MAX_ERROR_TEXT] + "..."
    return strip_userinfo(text)


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def failure_reason(ext: object) -> str:
    """`ext.sfdc.failureReason` of a reply, or "" when any level is missing or mistyped."""
    reason = _mapping(_mapping(ext).get("sfdc")).get("failureReason")
    return _quoted(reason) if isinstance(reason, str) else ""


class BayeuxError(SalesforceError):
    """An unsuccessful Bayeux reply: `error` is the server's string, `advice` its advice."""

    def __init__(
        self,
        channel: str,
        error: str,
        advice: dict[str, Any] | None = None,
        ext: dict[str, Any] | None = None,
    ) -> None:
        self.channel = _quoted(channel)
        self.error = _quoted(error)
        self.advice = advice or {}
        self.ext = ext or {}
        reason = failure_reason(self.ext)
        detail = f" ({reason})" if reason else ""
        super().__init__(f"{self.channel} failed: {self.error}{detail}")

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
        super().__init__(strip_userinfo(message))


def _bounded_ms(value: object, current: int, upper: int) -> int:
    """A millisecond advice value clamped to [0, upper]; `current` when not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return current
    if isinstance(value, float) and not math.isfinite(value):
        return current
    return int(min(max(value, 0), upper))


@dataclass
class Advice:
    reconnect: str = "retry"
    interval_ms: int = 0
    timeout_ms: int = 110_000

    def update(self, advice: object) -> None:
        """Takes what is usable of the server's advice; ignores or clamps the rest."""
        read = read_advice(advice, self)
        self.reconnect, self.interval_ms, self.timeout_ms = (
            read.reconnect,
            read.interval_ms,
            read.timeout_ms,
        )


def read_advice(advice: object, current: Advice) -> Advice:
    """The advice after a reply: never raises, whatever the server sent."""
    fields = _mapping(advice)
    reconnect = fields.get("reconnect")
    return Advice(
        reconnect=reconnect
        if isinstance(reconnect, str) and reconnect in RECONNECT_ADVICE
        else current.reconnect,
        interval_ms=_bounded_ms(fields.get("interval"), current.interval_ms, MAX_INTERVAL_MS),
        timeout_ms=_bounded_ms(fields.get("timeout"), current.timeout_ms, MAX_TIMEOUT_MS),
    )


@dataclass
class ConnectResult:
    """What one long-poll brought: the data messages, in the order the server sent them."""

    events: list[Message] = field(default_factory=list)


def classify_failure(reply: Message) -> BayeuxError:
    """The error an unsuccessful reply stands for; any field may be missing or mistyped."""
    channel = _quoted(reply.get("channel", "?"))
    raw_error = reply.get("error")
    error = _quoted(raw_error) if raw_error else "unsuccessful without an error"
    advice = _mapping(reply.get("advice")) or None
    ext = _mapping(reply.get("ext")) or None
    reason = failure_reason(ext)
    if error.startswith(("401::", "402::Unknown client")) or reason.startswith("401"):
        if "Unknown client" in error:
            return UnknownClientError(channel, error, advice, ext)
        return AuthInvalidError(channel, error, advice, ext)
    if "Unknown client" in error or (advice or {}).get("reconnect") == "handshake":
        return UnknownClientError(channel, error, advice, ext)
    return BayeuxError(channel, error, advice, ext)


def read_client_id(reply: Message) -> str:
    """The `clientId` of a successful handshake; TransportError when there is none."""
    client_id = reply.get("clientId")
    if not isinstance(client_id, str) or not client_id or len(client_id) > MAX_ERROR_TEXT:
        raise TransportError("the handshake reply has no usable clientId")
    return client_id


def split_answer(
    replies: list[Message], channel: str, message_id: str
) -> tuple[Message | None, list[Message]]:
    """The reply to our message (by channel and id) and the data messages beside it."""
    reply: Message | None = None
    events: list[Message] = []
    for item in replies:
        item_channel = item.get("channel")
        if item_channel == channel and item.get("id") in (message_id, _as_int(message_id)):
            reply = item
        elif isinstance(item_channel, str) and not item_channel.startswith("/meta/"):
            if "data" in item:
                events.append(item)
    return reply, events


def _as_int(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def is_successful(reply: Message) -> bool:
    """Only a JSON `true` is success: `"false"` or `1` is a peer we do not understand."""
    return reply.get("successful") is True


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
        on_carried: Callable[[list[Message]], None] | None = None,
    ) -> None:
        """`http` must have its own cookie jar (the server routes and identifies by cookie);
        `authorization` returns the current `Authorization` header value; `on_carried` is
        given the events a server delivers beside a subscribe or unsubscribe answer (a Bayeux
        server may deliver queued events in the answer to any request)."""
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
        self._on_carried = on_carried

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
        self.client_id = read_client_id(reply)
        return reply

    async def subscribe(self, channel: str, ext: dict[str, Any] | None = None) -> Message:
        message: Message = {"channel": "/meta/subscribe", "subscription": channel}
        if ext:
            message["ext"] = ext
        reply, events = await self._exchange(message, self._request_timeout_s)
        self.subscriptions.add(channel)
        self._carried(events)
        return reply

    async def unsubscribe(self, channel: str) -> Message:
        reply, events = await self._exchange(
            {"channel": "/meta/unsubscribe", "subscription": channel}, self._request_timeout_s
        )
        self.subscriptions.discard(channel)
        self._carried(events)
        return reply

    def _carried(self, events: list[Message]) -> None:
        if events and self._on_carried is not None:
            self._on_carried(events)

    async def connect(self) -> ConnectResult:
        """One long-poll; raises on failure, returns the events that came with the answer."""
        timeout_s = self.advice.timeout_ms / 1000 + self._stall_margin_s
        message: Message = {"channel": "/meta/connect", "connectionType": "long-polling"}
        _, events = await self._exchange(message, timeout_s)
        return ConnectResult(events=events)

    async def disconnect(self, timeout_s: float = 5.0) -> None:
        if self.client_id is None:
            return
        try:
            await self._exchange({"channel": "/meta/disconnect"}, timeout_s)
        finally:
            self.client_id = None
            self.subscriptions.clear()

    async def _exchange(self, message: Message, timeout_s: float) -> tuple[Message, list[Message]]:
        message = {**message, "id": str(next(self._ids))}
        if self.client_id is not None:
            message["clientId"] = self.client_id
        replies = await self._post([message], timeout_s)
        reply, events = split_answer(replies, message["channel"], message["id"])
        if reply is None:
            raise TransportError(f"no reply to {message['channel']} in the server's answer")
        self.advice.update(reply.get("advice"))
        if not is_successful(reply):
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
                raw = await response.read()
                status = response.status
        except TimeoutError as exc:
            raise TransportError(f"no answer within {timeout_s:.0f}s (stalled long-poll)") from exc
        except aiohttp.ClientError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        if status != 200:
            raise TransportError(f"HTTP {status} from the Streaming API", status)
        return read_answer(raw)


def read_answer(raw: bytes | str) -> list[Message]:
    """A Bayeux answer body as its message list; TransportError for anything else."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than ours
        raise TransportError("the Streaming API answered something that is not JSON") from exc
    if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
        raise TransportError("the Streaming API answered JSON that is not a message list")
    return body
