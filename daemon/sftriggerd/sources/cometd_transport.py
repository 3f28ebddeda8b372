"""The CometD (Bayeux) transport of the streaming source: Salesforce's Streaming API.

Every CometD trigger of the daemon shares one Bayeux client (sources/cometd_hub.py); a
`CometdTransport` is one trigger's view of it: its channel's subscription and inbox. The
client and this view turn every way Salesforce's CometD answers say what went wrong into the
neutral outcomes of sources/transport.py:

- `403::Unknown client` and `reconnect: handshake` advice: Reconnect;
- 401 and `reconnect: none` advice: Reauthenticate;
- "... does not exist" and any 403 on subscribe: ChannelUnavailable;
- "The replayId ..." on a subscribe from a stored replay id: ReplayExpired;
- HTTP errors and any other refusal: TransportFailure (a long-poll past its time: Stalled).

Replay ids are ints; -1 asks for new events and -2 for all retained ones.
"""

from __future__ import annotations

from ..salesforce.client import SalesforceClient
from ..salesforce.cometd import (
    STALL_MARGIN_S,
    AuthInvalidError,
    BayeuxError,
    TransportError,
    UnknownClientError,
)
from .cometd_hub import CometdHub, CometdSession, Inbox, neutral
from .position import ReplayId
from .transport import (
    ChannelUnavailable,
    Received,
    ReplayExpired,
    Start,
    StartAt,
    TransportFailure,
)

__all__ = ["REPLAY_ALL", "REPLAY_NEW", "CometdTransport", "neutral", "replay_of"]

REPLAY_NEW, REPLAY_ALL = -1, -2
_INVALID_REPLAY = "The replayId"
_CHANNEL_MISSING = "does not exist"


def replay_of(start: Start) -> int:
    if start is StartAt.NEW:
        return REPLAY_NEW
    if start is StartAt.RETAINED:
        return REPLAY_ALL
    assert isinstance(start, int), "the loop passes only positions this transport resumes"
    return start


class CometdTransport:
    """One trigger's channel on the daemon's shared Bayeux client (`hub`); without a hub, a
    client of its own."""

    def __init__(
        self,
        client: SalesforceClient,
        channel: str,
        *,
        stall_margin_s: float = STALL_MARGIN_S,
        hub: CometdHub | None = None,
    ) -> None:
        self.channel = channel
        self._client = client
        self._hub = hub or CometdHub(client, stall_margin_s=stall_margin_s)
        self._session: CometdSession | None = None
        self._inbox: Inbox | None = None

    def resumable(self, position: ReplayId) -> bool:
        # An opaque (Pub/Sub API) replay id means nothing to CometD.
        return isinstance(position, int)

    async def open(self) -> None:
        self._session = await self._hub.join(self.channel)

    async def subscribe(self, start: Start) -> None:
        session = self._open_session()
        replay = replay_of(start)
        self._inbox = None
        # The token this request carries: a refusal names it, so that a trigger finding it
        # already replaced (another trigger logged in meanwhile) does not log in again.
        sent_with = await self._client.session.token()
        try:
            self._inbox = await session.subscribe(self.channel, {"replay": {self.channel: replay}})
        except (UnknownClientError, AuthInvalidError, TransportError) as exc:
            # The client or the session ended, not the channel.
            raise neutral(exc, sent_with) from exc
        except BayeuxError as exc:
            if _CHANNEL_MISSING in exc.error or exc.code == "403":
                raise ChannelUnavailable(exc.error) from exc
            if _INVALID_REPLAY in exc.error and replay >= 0:
                raise ReplayExpired(exc.error) from exc
            raise neutral(exc) from exc

    async def receive(self) -> list[Received]:
        """What the shared long-poll brought for this channel since the last call: at least
        one answer's worth, events or not."""
        session, inbox = self._open_session(), self._inbox
        if inbox is None:
            raise TransportFailure(f"{self.channel} is not subscribed")
        while True:
            if inbox.items:  # also those kept when the inbox overflowed: they are in order
                return inbox.take()
            if inbox.overflow is not None:
                raise inbox.overflow
            if inbox.answers:
                return inbox.take()
            if session.ended is not None:
                raise session.ended
            inbox.changed.clear()
            await inbox.changed.wait()

    async def close(self) -> None:
        """Also before every new session: the channel is unsubscribed, and the last view to
        leave a client disconnects it (a client left behind counts toward the org's limit
        until the server expires it)."""
        session, self._session, self._inbox = self._session, None, None
        if session is not None:
            await session.leave(self.channel)

    def _open_session(self) -> CometdSession:
        if self._session is None:
            raise TransportFailure("the CometD session is not open")
        return self._session
