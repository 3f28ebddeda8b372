"""The CometD (Bayeux) transport of the streaming source: Salesforce's Streaming API.

It owns the Bayeux client's lifecycle (its own HTTP session and cookie jar per session,
handshake, the first connect, disconnect) and every way Salesforce's CometD answers say
what went wrong, turned into the neutral outcomes of sources/transport.py:

- `403::Unknown client` and `reconnect: handshake` advice: Reconnect;
- 401 and `reconnect: none` advice: Reauthenticate;
- "... does not exist" and any 403 on subscribe: ChannelUnavailable;
- "The replayId ..." on a subscribe from a stored replay id: ReplayExpired;
- HTTP errors and any other refusal: TransportFailure (a long-poll past its time: Stalled).

Replay ids are ints; -1 asks for new events and -2 for all retained ones.
"""

from __future__ import annotations

import asyncio

import aiohttp

from ..errors import SalesforceError
from ..events.cometd_envelope import read_message
from ..salesforce.client import SalesforceClient
from ..salesforce.cometd import (
    STALL_MARGIN_S,
    AuthInvalidError,
    BayeuxClient,
    BayeuxError,
    TransportError,
    UnknownClientError,
)
from .position import ReplayId
from .transport import (
    ChannelUnavailable,
    Reauthenticate,
    Received,
    Reconnect,
    ReplayExpired,
    Stalled,
    Start,
    StartAt,
    TransportFailure,
    TransportOutcome,
)

REPLAY_NEW, REPLAY_ALL = -1, -2
_INVALID_REPLAY = "The replayId"
_CHANNEL_MISSING = "does not exist"
# A disconnect is a courtesy to the server (it frees a client slot at once instead of after
# its expiry); it must not hold up the next handshake for long.
_DISCONNECT_TIMEOUT_S = 2.0


def neutral(exc: SalesforceError) -> TransportOutcome:
    """The outcome a Bayeux client error stands for (the same text, for logs and status)."""
    if isinstance(exc, UnknownClientError):
        return Reconnect(str(exc))
    if isinstance(exc, AuthInvalidError):
        return Reauthenticate(str(exc))
    if isinstance(exc, TransportError) and isinstance(exc.__cause__, TimeoutError):
        return Stalled(str(exc))
    return TransportFailure(str(exc))


def replay_of(start: Start) -> int:
    if start is StartAt.NEW:
        return REPLAY_NEW
    if start is StartAt.RETAINED:
        return REPLAY_ALL
    assert isinstance(start, int), "the loop passes only positions this transport resumes"
    return start


class CometdTransport:
    def __init__(
        self, client: SalesforceClient, channel: str, *, stall_margin_s: float = STALL_MARGIN_S
    ) -> None:
        self._client = client
        self.channel = channel
        self._stall_margin_s = stall_margin_s
        self._http: aiohttp.ClientSession | None = None
        self._bayeux: BayeuxClient | None = None
        self._interval_s = 0.0  # the server's advised pause before the next long-poll
        self._ended: TransportOutcome | None = None  # advice to act on at the next receive

    def resumable(self, position: ReplayId) -> bool:
        # An opaque (Pub/Sub API) replay id means nothing to CometD.
        return isinstance(position, int)

    async def open(self) -> None:
        # The routing cookie may come from an IP host, hence an unsafe jar.
        self._http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        token = await self._client.session.token()

        async def authorization() -> str:
            return f"Bearer {(await self._client.session.token()).access_token}"

        self._bayeux = BayeuxClient(
            self._http,
            f"{token.instance_url}/cometd/{self._client.api_version}",
            authorization,
            proxy=self._client.proxy,
            stall_margin_s=self._stall_margin_s,
        )
        try:
            await self._bayeux.handshake()
            await self._bayeux.connect()  # the first connect answers at once, with the advice
        except (BayeuxError, TransportError) as exc:
            raise neutral(exc) from exc

    async def subscribe(self, start: Start) -> None:
        bayeux = self._session()
        replay = replay_of(start)
        try:
            await bayeux.subscribe(self.channel, {"replay": {self.channel: replay}})
        except (UnknownClientError, AuthInvalidError, TransportError) as exc:
            raise neutral(exc) from exc  # the client or the session ended, not the channel
        except BayeuxError as exc:
            if _CHANNEL_MISSING in exc.error or exc.code == "403":
                raise ChannelUnavailable(exc.error) from exc
            if _INVALID_REPLAY in exc.error and replay >= 0:
                raise ReplayExpired(exc.error) from exc
            raise neutral(exc) from exc
        if self.channel not in bayeux.subscriptions:
            raise TransportFailure(f"/meta/subscribe failed: {self.channel} is not subscribed")

    async def receive(self) -> list[Received]:
        """One long-poll, after the pause the server advised after the previous one."""
        bayeux = self._session()
        if self._ended is not None:
            raise self._ended
        if self._interval_s > 0:
            await asyncio.sleep(self._interval_s)
        try:
            result = await bayeux.connect()
        except (BayeuxError, TransportError) as exc:
            raise neutral(exc) from exc
        self._interval_s = bayeux.advice.interval_ms / 1000  # milliseconds, not seconds
        if bayeux.advice.reconnect == "none":
            # Acted on once this answer's events are stored.
            self._ended = Reauthenticate("/meta/connect failed: server advised reconnect: none")
        return [
            read_message(self.channel, message)
            for message in result.events
            if message.get("channel") == self.channel
        ]

    async def close(self) -> None:
        """Also before every re-handshake: a client left behind keeps counting toward the
        org's concurrent-client limit until the server expires it."""
        bayeux, http = self._bayeux, self._http
        self._bayeux = self._http = None
        try:
            if bayeux is not None:
                await self._disconnect(bayeux)
        finally:
            if http is not None:
                await http.close()

    async def _disconnect(self, bayeux: BayeuxClient) -> None:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            return  # shutting down past its grace: the server expires the client on its own
        try:
            await bayeux.disconnect(timeout_s=_DISCONNECT_TIMEOUT_S)
        except SalesforceError:
            pass  # the server expires the client on its own

    def _session(self) -> BayeuxClient:
        if self._bayeux is None:
            raise TransportFailure("the CometD session is not open")
        return self._bayeux
