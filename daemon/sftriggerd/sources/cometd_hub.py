"""One Bayeux client for every CometD trigger of the daemon.

Salesforce limits the Streaming API clients an org may have open at once (20 in a Developer
Edition), and every integration of the org shares that limit. So the daemon opens one
client (one handshake, one cookie jar), subscribes every CometD trigger's channel on it, and
runs one long-poll loop (the pump) that routes each event to its channel's inbox. Each
trigger reads its inbox through its own transport view (sources/cometd_transport.py).

What ends the client (an unknown client, an ended session, a stalled or failed long-poll,
`reconnect: none` advice) ends it for every trigger at once: each view raises the same
neutral outcome, its trigger closes the view, and the first trigger to open again makes the
next client, which the others join. Two triggers on the same channel (each with its own
position) never share a client: a channel is subscribed once per client, so the second
makes a client of its own, as does a trigger whose channel's last subscribe or
unsubscribe on the client went unanswered (an old subscription may still be live there, or
end later). A trigger that falls behind by more than
`INBOX_LIMIT` events loses only the events past them in its own inbox (never memory without
bound, never another trigger's events): it stores the ones kept, then resubscribes from its
stored position.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import aiohttp

from ..errors import SalesforceError
from ..events.cometd_envelope import read_message
from ..events.streamed import Received
from ..logs import get_logger
from ..salesforce.answers import Token
from ..salesforce.client import SalesforceClient
from ..salesforce.cometd import (
    STALL_MARGIN_S,
    AuthInvalidError,
    BayeuxClient,
    BayeuxError,
    TransportError,
    UnknownClientError,
)
from .transport import (
    Reauthenticate,
    Reconnect,
    Stalled,
    TransportFailure,
    TransportOutcome,
)

log = get_logger(__name__)

# Events one channel may hold unread before its trigger is told to resubscribe from its
# stored position (what it has not stored yet, the server replays). The long-poll does not
# wait for a slow trigger (the others would wait with it, and a client that stops polling is
# expired by the server), so this bounds the memory a slow trigger's channel can take.
INBOX_LIMIT = 2_000
# How long a view waits for a client to be clean of its channel's old subscription (see
# CometdSession._unclean) before a new client is made for it instead.
CLEAN_WAIT_S = 2.0
# A disconnect or unsubscribe is a courtesy to the server; it must not hold anything up.
COURTESY_TIMEOUT_S = 2.0


def neutral(exc: SalesforceError, stale: Token | None = None) -> TransportOutcome:
    """The outcome a Bayeux client error stands for (the same text, for logs and status)."""
    if isinstance(exc, UnknownClientError):
        return Reconnect(str(exc))
    if isinstance(exc, AuthInvalidError):
        return Reauthenticate(str(exc), stale)
    if isinstance(exc, TransportError) and isinstance(exc.__cause__, TimeoutError):
        return Stalled(str(exc))
    return TransportFailure(str(exc))


def shutting_down() -> bool:
    """True in a task cancelled past its grace: no more network courtesies then."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


@dataclass
class Inbox:
    """One subscribed channel's events, in order, until its trigger takes them. `answers`
    counts the long-poll answers since the last take: an answer with nothing for the channel
    still proves the stream alive."""

    items: list[Received] = field(default_factory=list)
    answers: int = 0
    overflow: TransportOutcome | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def take(self) -> list[Received]:
        items, self.items, self.answers = self.items, [], 0
        return items


def route(
    inboxes: dict[str, Inbox],
    messages: list[dict[str, Any]],
    inbox_limit: int,
    *,
    answered: bool = True,
) -> None:
    """One long-poll answer's data messages into their channels' inboxes, in order. A channel
    no trigger reads (now) is skipped: its trigger resumes by position. An inbox that is full
    (`inbox_limit` events) keeps what it holds, drops the event past it and every later one,
    and tells its trigger to resubscribe once it has taken what is kept: each resubscription
    moves the trigger's position on, even when the server replays more than `inbox_limit`
    events in one answer. Every inbox counts a long-poll answer (`answered`), events for it
    or not; events beside a subscribe or unsubscribe answer are no proof of a live stream."""
    for message in messages:
        channel = message.get("channel")
        if not isinstance(channel, str):
            continue
        inbox = inboxes.get(channel)
        if inbox is None or inbox.overflow is not None:
            continue
        if len(inbox.items) < inbox_limit:
            inbox.items.append(read_message(channel, message))
        else:
            inbox.overflow = Reconnect(
                f"{channel} fell more than {inbox_limit} events behind; it"
                " resubscribes from its stored position"
            )
    for inbox in inboxes.values():
        inbox.answers += int(answered)
        inbox.changed.set()


class CometdSession:
    """One Bayeux client: its handshake, its channels' inboxes and its long-poll loop."""

    def __init__(self, client: SalesforceClient, stall_margin_s: float, inbox_limit: int) -> None:
        self._client = client
        self._stall_margin_s = stall_margin_s
        self._inbox_limit = inbox_limit
        # The routing cookie may come from an IP host, hence an unsafe jar.
        self._http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self._bayeux: BayeuxClient | None = None
        self._token: Token | None = None  # the one the last request carried
        self._inboxes: dict[str, Inbox] = {}
        self._meta = asyncio.Lock()  # one subscribe or unsubscribe at a time
        self._pump: asyncio.Task[None] | None = None
        self._interval_s = 0.0  # the server's advised pause before the next long-poll
        self.channels: set[str] = set()  # one per view that joined and has not left
        # Channels this client must not take up again: the server never answered their last
        # subscribe or unsubscribe, so an old subscription may still be live here (bringing
        # its events into a new inbox, ahead of the stored position) or end after a new one.
        self.retired: set[str] = set()
        # Long-polls sent and answered (each routed), and per channel unsubscribed here the
        # count of long-polls that must be answered before it may be subscribed again here:
        # one sent before its unsubscribe was answered may still bring the old subscription's
        # events, which a new inbox would take ahead of the stored position.
        self._polls_sent = 0
        self._polls_answered = 0
        self._answered = asyncio.Event()
        self._unclean: dict[str, int] = {}
        self.ended: TransportOutcome | None = None

    async def start(self) -> None:
        """Handshake, the first connect (it answers at once, with the advice), the pump."""
        token = await self._client.session.token()
        self._bayeux = BayeuxClient(
            self._http,
            f"{token.instance_url}/cometd/{self._client.api_version}",
            self._authorization,
            proxy=self._client.proxy,
            stall_margin_s=self._stall_margin_s,
            on_carried=partial(self._route, answered=False),
        )
        try:
            await self._bayeux.handshake()
            await self._bayeux.connect()
        except (BayeuxError, TransportError) as exc:
            await self.end(neutral(exc, self._token), courtesy=True)
            raise neutral(exc, self._token) from exc
        except BaseException:
            await self.end(TransportFailure("the CometD handshake was cancelled"))
            raise
        self._interval_s = self._bayeux.advice.interval_ms / 1000
        self._pump = asyncio.create_task(self._long_poll(), name="cometd-long-poll")

    async def _authorization(self) -> str:
        self._token = await self._client.session.token()
        return f"Bearer {self._token.access_token}"

    async def subscribe(self, channel: str, ext: dict[str, Any]) -> Inbox:
        """Subscribes `channel`; its inbox exists before the request leaves, so an event the
        long-poll brings before the reply is kept. Raises the Bayeux client's errors."""
        bayeux = self._live()
        inbox = self._inboxes[channel] = Inbox()
        try:
            async with self._meta:
                await bayeux.subscribe(channel, ext)
        except BaseException as exc:
            self._inboxes.pop(channel, None)
            if not isinstance(exc, BayeuxError):  # unanswered: the server may have it
                self.retired.add(channel)
            raise
        if channel not in bayeux.subscriptions:
            self._inboxes.pop(channel, None)
            raise TransportFailure(f"/meta/subscribe failed: {channel} is not subscribed")
        return inbox

    async def leave(self, channel: str) -> None:
        """A view is done: its channel is unsubscribed, and the last view ends the client."""
        self.channels.discard(channel)
        try:
            if self._inboxes.pop(channel, None) is not None:
                await self._unsubscribe(channel)
        finally:
            if not self.channels:
                await self.end(TransportFailure("the CometD client was closed"), courtesy=True)

    async def _unsubscribe(self, channel: str) -> None:
        bayeux = self._bayeux
        if bayeux is None or self.ended is not None:
            return
        self.retired.add(channel)  # until the server answers the unsubscribe
        if shutting_down():
            return
        with contextlib.suppress(SalesforceError, TimeoutError):
            async with asyncio.timeout(COURTESY_TIMEOUT_S), self._meta:
                await bayeux.unsubscribe(channel)
            self.retired.discard(channel)
            self._unclean[channel] = self._polls_sent

    def takes(self, channel: str) -> bool:
        """Whether `channel` may be subscribed here now."""
        return self.ended is None and self.may_take(channel) and self._clean(channel)

    def may_take(self, channel: str) -> bool:
        """Whether it may be, once the long-polls sent before its unsubscribe are answered."""
        return self.ended is None and channel not in self.channels | self.retired

    def _clean(self, channel: str) -> bool:
        return self._polls_answered >= self._unclean.get(channel, 0)

    async def cleaned(self, channel: str, timeout_s: float) -> bool:
        """Waits up to `timeout_s` until `channel` may be subscribed here; whether it may."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self.may_take(channel) and not self._clean(channel):
                    self._answered.clear()
                    await self._answered.wait()
        return self.takes(channel)

    async def end(self, outcome: TransportOutcome, *, courtesy: bool = False) -> None:
        """Ends the client for every view with `outcome`; a disconnect when `courtesy` (it
        frees the server's client slot at once instead of after its expiry; also after the
        server refused the client, which may only have been a refused long-poll)."""
        self._ended_with(outcome)
        pump, self._pump = self._pump, None
        if pump is not None and pump is not asyncio.current_task():
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        try:
            if courtesy and self._bayeux is not None and not shutting_down():
                with contextlib.suppress(SalesforceError):
                    await self._bayeux.disconnect(timeout_s=COURTESY_TIMEOUT_S)
        finally:
            await self._http.close()

    def _ended_with(self, outcome: TransportOutcome) -> None:
        if self.ended is None:
            self.ended = outcome
        for inbox in self._inboxes.values():
            inbox.changed.set()
        self._answered.set()

    async def _long_poll(self) -> None:
        bayeux = self._live()
        try:
            while self.ended is None:
                if self._interval_s > 0:
                    await asyncio.sleep(self._interval_s)
                self._polls_sent += 1
                result = await bayeux.connect()
                self._interval_s = bayeux.advice.interval_ms / 1000  # milliseconds
                self._route(result.events)
                self._polls_answered = self._polls_sent
                self._answered.set()
                if bayeux.advice.reconnect == "none":
                    # After this answer's events: they reach their triggers first.
                    message = "/meta/connect failed: server advised reconnect: none"
                    self._ended_with(Reauthenticate(message, self._token))
        except (BayeuxError, TransportError) as exc:
            self._ended_with(neutral(exc, self._token))
        except Exception as exc:  # a defect here must not leave every trigger waiting
            log.exception("cometd_long_poll_failed")
            self._ended_with(TransportFailure(f"the CometD long-poll failed: {exc!r}"))
        if self.ended is not None:
            log.info("cometd_client_ended", reason=str(self.ended), channels=len(self._inboxes))

    def _route(self, messages: list[dict[str, Any]], *, answered: bool = True) -> None:
        """Into their channels' inboxes; `answered`: a long-poll answer (it proves the
        stream alive), not events beside a subscribe or unsubscribe answer."""
        route(self._inboxes, messages, self._inbox_limit, answered=answered)

    def _live(self) -> BayeuxClient:
        if self.ended is not None:
            raise self.ended
        if self._bayeux is None:
            raise TransportFailure("the CometD client is not open")
        return self._bayeux


class CometdHub:
    """Hands every CometD view the daemon's one live client, making it when there is none."""

    def __init__(
        self,
        client: SalesforceClient,
        *,
        stall_margin_s: float = STALL_MARGIN_S,
        inbox_limit: int = INBOX_LIMIT,
    ) -> None:
        self._client = client
        self._stall_margin_s = stall_margin_s
        self._inbox_limit = inbox_limit
        self._sessions: list[CometdSession] = []
        self._opening = asyncio.Lock()
        self.handshakes = 0

    async def join(self, channel: str) -> CometdSession:
        """A live client that does not carry `channel` yet, after a handshake when there is
        none. Views that ask while one is being made wait for it: one handshake serves all."""
        async with self._opening:
            self._sessions = [each for each in self._sessions if each.ended is None]
            session = next((s for s in self._sessions if s.takes(channel)), None)
            if session is None:
                # One that carried the channel until lately: its long-poll in flight then
                # may still bring the old subscription's events. Usually answered soon (a
                # busy stream); a quiet one holds it for long, and a new client is quicker.
                waiting = next((s for s in self._sessions if s.may_take(channel)), None)
                if waiting is not None and await waiting.cleaned(channel, CLEAN_WAIT_S):
                    session = waiting
            if session is None:
                session = CometdSession(self._client, self._stall_margin_s, self._inbox_limit)
                self.handshakes += 1
                await session.start()
                self._sessions.append(session)
                log.info("cometd_client_opened", clients=len(self._sessions))
            session.channels.add(channel)
            return session

    async def close(self) -> None:
        """At shutdown, after every view has left: ends any client still open."""
        sessions, self._sessions = self._sessions, []
        for session in sessions:
            if session.ended is None:
                await session.end(TransportFailure("the daemon is stopping"), courtesy=True)
