"""The Bayeux meta channels as Salesforce answers them: handshake, connect, subscribe, ...

One `Exchange` answers one HTTP request's batch of messages. Every refusal is an in-band
reply (`successful: false`) with Salesforce's exact `error` string and advice; the HTTP layer
(`endpoint.py`) only ever sees a list of replies, or a `CutConnection` when a held connect
must end without an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from typing import Any

from sftriggerd_emulator.streaming.channels import UnknownFilterFieldsError
from sftriggerd_emulator.streaming.clients import Client, Hold, Subscription, WakeReason
from sftriggerd_emulator.streaming.hub import StreamingHub
from sftriggerd_emulator.streaming.streams import ReplayInvalidError

Message = dict[str, Any]

NO_AUTH = "401::Request requires authentication"
AUTH_INVALID = "401::Authentication invalid"
UNKNOWN_CLIENT = "403::Unknown client"
HANDSHAKE_DENIED = "403::Handshake denied"
CLIENT_LIMIT = "403::Organization concurrent user limit exceeded"
USER_MISMATCH = "400::Authenticated user id does not match the session's user id"
NO_CHANNEL = "400::Channel name not specified"
NO_LEADING_SLASH = "400::Channel subscriptions must start with a leading '/'"
PUBLISH_DENIED = "403::Publish denied"
BROWSER_COOKIE = "BAYEUX_BROWSER"

_ADVICE_NONE = {"reconnect": "none", "interval": 0}
_ADVICE_HANDSHAKE = {"interval": 0, "reconnect": "handshake"}
_SUPPORTED_EXT = {"replay": True, "payload.format": True}
# How often a held connect re-checks the session, as Salesforce "regularly validates" it.
SESSION_CHECK_S = 1.0


def unknown_channel(channel: str) -> str:
    return f"400::The channel you requested to subscribe to does not exist {{{channel}}}"


def invalid_replay(replay: object) -> str:
    return (
        f"400::The replayId {{{replay}}} you provided was invalid.  Please provide a valid ID,"
        " -2 to replay all events, or -1 to replay only new events."
    )


def missing_cookie(client_id: str) -> str:
    return (
        f"400::Client {client_id} has established a session, but no {BROWSER_COOKIE} cookie present"
    )


class CutConnection(Exception):
    """A held connect was cut by `/_emulator/cometd/cut`: drop it, or answer HTTP 500."""

    def __init__(self, status: int | None) -> None:
        super().__init__("connection cut")
        self.status = status


def _reply(message: Message, **fields: Any) -> Message:
    """A reply to `message`: its channel, its `id` exactly as sent (type included), fields."""
    reply: Message = {}
    if "clientId" in fields:
        reply["clientId"] = fields.pop("clientId")
    reply["channel"] = message.get("channel")
    if "id" in message:
        reply["id"] = message["id"]
    reply.update(fields)
    return reply


def _failure(message: Message, error: str, **fields: Any) -> Message:
    return _reply(message, **fields, error=error, successful=False)


class Exchange:
    """The replies to one request's messages, from the caller's token and cookies."""

    def __init__(
        self,
        hub: StreamingHub,
        token: str | None,
        browser_id: str | None,
        transport_closing: Callable[[], bool],
    ) -> None:
        self.hub = hub
        self.ctx = hub.ctx
        self.token = token
        self.user_id = None if token is None else self.ctx.sessions.user_for_token(token)
        if token is not None and self.user_id is not None:
            self.ctx.sessions.touch(token)
        self.browser_id = browser_id
        self.new_browser_id: str | None = None  # set when a handshake hands out the cookie
        self._transport_closing = transport_closing

    async def answer(self, messages: list[Message]) -> list[Message]:
        """Replies to every message; connects go last, holding only when sent alone."""
        replies: list[Message] = []
        connects: list[Message] = []
        for message in messages:
            if message.get("channel") == "/meta/connect":
                connects.append(message)
            else:
                replies.append(self._answer_one(message))
        for connect in connects:
            may_hold = len(messages) == 1
            replies.extend(await self.connect(connect, may_hold=may_hold))
        return replies

    def _answer_one(self, message: Message) -> Message:
        channel = message.get("channel")
        if channel == "/meta/handshake":
            return self.handshake(message)
        if channel == "/meta/subscribe":
            return self.subscribe(message)
        if channel == "/meta/unsubscribe":
            return self.unsubscribe(message)
        if channel == "/meta/disconnect":
            return self.disconnect(message)
        if not isinstance(channel, str) or not channel:
            return _failure(message, NO_CHANNEL)
        if channel.startswith("/meta/"):
            return _failure(message, f"400::Unknown meta channel {{{channel}}}")
        return _failure(message, PUBLISH_DENIED)

    # -- handshake -------------------------------------------------------------------------

    def handshake(self, message: Message) -> Message:
        self.ctx.stats["handshakes"] += 1
        if self.token is None or self.user_id is None:
            reason = NO_AUTH if self.token is None else AUTH_INVALID
            return _failure(
                message,
                HANDSHAKE_DENIED,
                ext={"sfdc": {"failureReason": reason}},
                advice={"reconnect": "none"},
            )
        browser_id = self.browser_id or self.new_browser_id or _new_browser_id()
        client = self.hub.clients.add(self.user_id, browser_id, self.ctx.clock.now())
        if client is None:
            return _failure(
                message,
                HANDSHAKE_DENIED,
                ext={"sfdc": {"failureReason": CLIENT_LIMIT}, **_SUPPORTED_EXT},
                advice={"reconnect": "none"},
            )
        if self.browser_id is None:
            self.new_browser_id = browser_id
        return {
            "ext": dict(_SUPPORTED_EXT),
            "minimumVersion": "1.0",
            "clientId": client.client_id,
            "supportedConnectionTypes": ["long-polling"],
            **_reply(message, version="1.0", successful=True),
        }

    # -- the checks every other meta message passes ----------------------------------------

    def _client_for(self, message: Message) -> Client | Message:
        """The message's live client, or the refusal Salesforce sends instead."""
        client_id = message.get("clientId")
        echoed = {"clientId": client_id} if isinstance(client_id, str) else {}
        if self.token is None:
            return _failure(message, NO_AUTH, **echoed, advice=dict(_ADVICE_NONE))
        client = self.hub.clients.get(client_id, self.ctx.clock.now())
        if self.user_id is None:
            if client is not None:
                self.hub.clients.remove(client)
            return _failure(message, AUTH_INVALID, **echoed, advice=dict(_ADVICE_NONE))
        if client is None:
            return self._unknown_client(message)
        if client.user_id != self.user_id:
            return _failure(message, USER_MISMATCH, **echoed, advice=dict(_ADVICE_NONE))
        if self.ctx.settings.cometd_require_browser_cookie and self.browser_id is None:
            return _failure(message, missing_cookie(client.client_id), **echoed)
        return client

    def _unknown_client(self, message: Message) -> Message:
        """Salesforce's reply to an unknown client, which names no client id."""
        self.ctx.stats["unknown_client_refusals"] += 1
        return _failure(message, UNKNOWN_CLIENT, advice=dict(_ADVICE_HANDSHAKE))

    # -- subscribe / unsubscribe / disconnect ----------------------------------------------

    def subscribe(self, message: Message) -> Message:
        self.ctx.stats["subscribes"] += 1
        client = self._client_for(message)
        if not isinstance(client, Client):
            return client
        channel = message.get("subscription")
        fields = {"clientId": client.client_id, "subscription": channel}
        if not isinstance(channel, str) or not channel:
            return _failure(message, NO_CHANNEL, **fields)
        if not channel.startswith("/"):
            return _failure(message, NO_LEADING_SLASH, **fields)
        try:
            view = self.hub.channels.resolve(channel)
        except UnknownFilterFieldsError as exc:
            error = (
                f"400::Query fields {{{', '.join(exc.fields)}}} do not exist on the topic entity"
            )
            return _failure(message, error, **fields)
        if view is None:
            return _failure(message, unknown_channel(channel), **fields)
        replay = _replay_of(message, channel)
        try:
            cursor = self.hub.stream(view.stream).start_cursor(replay)
        except ReplayInvalidError:
            return _failure(message, invalid_replay(replay), **fields)
        client.subscriptions[channel] = Subscription(view, cursor)
        self.hub.activity.subscribed(channel, client.client_id, self.ctx.clock.now())
        client.nudge()
        return _reply(message, **fields, successful=True)

    def unsubscribe(self, message: Message) -> Message:
        client = self._client_for(message)
        if not isinstance(client, Client):
            return client
        channel = message.get("subscription")
        if isinstance(channel, str):
            client.subscriptions.pop(channel, None)
            self.hub.activity.ended([channel], client.client_id, self.ctx.clock.now())
        fields = {"clientId": client.client_id, "subscription": channel}
        return _reply(message, **fields, successful=True)

    def disconnect(self, message: Message) -> Message:
        client = self._client_for(message)
        if not isinstance(client, Client):
            return client
        self.hub.clients.remove(client)
        channels = list(client.subscriptions)
        self.hub.activity.ended(channels, client.client_id, self.ctx.clock.now())
        return _reply(message, successful=True)

    # -- connect ---------------------------------------------------------------------------

    async def connect(self, message: Message, *, may_hold: bool) -> list[Message]:
        """The events due to the client, then the connect ack; held while there are none."""
        self.ctx.stats["connects"] += 1
        client = self._client_for(message)
        if not isinstance(client, Client):
            return [client]
        if self.hub.hostile.take_refusal():
            return [self._unknown_client(message)]
        connection_type = message.get("connectionType")
        if connection_type != "long-polling":
            error = f"400::Invalid connection type {{{connection_type}}}"
            return [_failure(message, error, clientId=client.client_id)]
        ack = _reply(message, clientId=client.client_id, successful=True)
        self.hub.activity.asked(list(client.subscriptions), client.client_id, self.ctx.clock.now())
        timeout_ms = self.ctx.settings.cometd_timeout_ms
        if not client.connected:
            client.connected = True
            ack["advice"] = {"interval": 0, "timeout": timeout_ms, "reconnect": "retry"}
            may_hold = False
        armed, armed_advice = self.hub.hostile.next_advice()
        if armed:
            ack["advice"] = armed_advice
        advice = message.get("advice")
        if isinstance(advice, dict) and advice.get("timeout") == 0:
            may_hold = False
        reason = await self._hold(client, timeout_ms / 1000) if may_hold else None
        return self._after_hold(message, client, ack, reason)

    def _after_hold(
        self, message: Message, client: Client, ack: Message, reason: WakeReason | None
    ) -> list[Message]:
        if reason is WakeReason.CUT:
            raise CutConnection(None)
        if reason is WakeReason.CUT_500:
            raise CutConnection(500)
        if reason is WakeReason.GONE:
            return [self._unknown_client(message)]
        if reason is WakeReason.REFUSED and self.hub.hostile.take_refusal():
            return [self._unknown_client(message)]
        if reason is WakeReason.SESSION_ENDED:
            self.hub.clients.remove(client)
            fields = {"clientId": client.client_id, "advice": dict(_ADVICE_NONE)}
            return [_failure(message, AUTH_INVALID, **fields)]
        if reason not in (None, WakeReason.REFUSED) or self._transport_closing():
            # Superseded, shutting down, or nobody left to read it: keep the events queued.
            return [ack]
        return [*self.hub.take_messages(client), ack]

    async def _hold(self, client: Client, timeout_s: float) -> WakeReason | None:
        """Waits for events, the timeout or an interruption; None means "answer normally"."""
        if client.hold is not None:
            client.hold.interrupt(WakeReason.SUPERSEDED)
        hold = Hold()
        client.hold = hold
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            while True:
                hold.wake.clear()
                if hold.reason is not None:
                    return hold.reason
                if self.hub.has_pending(client):
                    return None
                if self.token is None or self.ctx.sessions.user_for_token(self.token) is None:
                    return WakeReason.SESSION_ENDED
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(hold.wake.wait(), min(remaining, SESSION_CHECK_S))
        finally:
            if client.hold is hold:
                client.hold = None
            client.last_seen = self.ctx.clock.now()


def _replay_of(message: Message, channel: str) -> object:
    """The replay id asked for `channel` in `ext.replay`; -1 (new events) when absent."""
    ext = message.get("ext")
    replay_map = ext.get("replay") if isinstance(ext, dict) else None
    if not isinstance(replay_map, dict):
        return -1
    value = replay_map.get(channel, replay_map.get(channel.partition("?")[0], -1))
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _new_browser_id() -> str:
    return secrets.token_hex(12)
