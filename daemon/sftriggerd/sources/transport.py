"""The narrow seam between the streaming source and a streaming transport.

The stream loop (sources/streaming.py) speaks only this protocol; an adapter (CometD in
sources/cometd_transport.py) owns its wire protocol and every string or code by which its
server says what went wrong, and raises the neutral outcomes below instead. Positions are
opaque to the loop: it stores what an item carries and hands it back on the next subscribe.

One transport object serves one session of one channel: `open`, `subscribe`, then
`receive` until it raises or the source stops, and `close` (always, also after a failure).
"""

from __future__ import annotations

import enum
from typing import Protocol, runtime_checkable

from ..errors import SftriggerdError
from ..events.streamed import Received
from ..salesforce.answers import Token
from .position import ReplayId

__all__ = [
    "ChannelUnavailable",
    "IdlePositions",
    "Reauthenticate",
    "Received",
    "Reconnect",
    "ReplayExpired",
    "Stalled",
    "Start",
    "StartAt",
    "StreamTransport",
    "TransportFactory",
    "TransportFailure",
]


class StartAt(enum.Enum):
    NEW = "new"  # only events published from now on
    RETAINED = "retained"  # every event the server still retains


# Where a subscription starts: a preset, or after a stored position (exclusive).
Start = StartAt | ReplayId


class TransportOutcome(SftriggerdError):
    """A neutral outcome of a transport call; the message is the server's, for people."""


class ReplayExpired(TransportOutcome):
    """The position asked for is past the server's retention (or is not one it knows): the
    loop back-fills from the time it had reached, never silently jumping to "new"."""


class ChannelUnavailable(TransportOutcome):
    """The channel cannot be subscribed (CDC not enabled for the object, no permission)."""


class Reconnect(TransportOutcome):
    """The server forgot this client or stream (routine): open a new session at once, and
    back off only when it repeats."""


class Reauthenticate(TransportOutcome):
    """The session behind the access token ended: log in again (one login serves every
    trigger), then open a new session. `stale` is the token the refused call carried, when
    the transport knows it: a trigger that finds it already replaced logs in no more."""

    def __init__(self, message: str, stale: Token | None = None) -> None:
        super().__init__(message)
        self.stale = stale


class TransportFailure(TransportOutcome):
    """The exchange failed (connection, protocol, server error, a refusal not listed above):
    back off, then open a new session."""


class Stalled(TransportFailure):
    """Neither events nor a keepalive came in time: the connection is presumed half-open."""


class StreamTransport(Protocol):
    """One session of one channel."""

    def resumable(self, position: ReplayId) -> bool:
        """Whether a stored position is one this transport can subscribe after (a stored
        position of another transport is not: the loop then resumes by time)."""
        ...

    async def open(self) -> None:
        """Connects and authenticates. Raises Reconnect, Reauthenticate, TransportFailure."""
        ...

    async def subscribe(self, start: Start) -> None:
        """Subscribes the channel from `start`; may be called again on the same session
        after a ReplayExpired. Raises ReplayExpired (only for a position), ChannelUnavailable,
        Reconnect, Reauthenticate, TransportFailure."""
        ...

    async def receive(self) -> list[Received]:
        """The next batch of the channel's events, in order (empty: the server answered with
        nothing new, which still proves the stream alive). Raises Reconnect, Reauthenticate,
        TransportFailure, Stalled, and ReplayExpired when the server refuses the position
        only after `subscribe` returned (before the stream's first answer)."""
        ...

    async def close(self) -> None:
        """Ends the session, freeing the server's client slot; never raises."""
        ...


@runtime_checkable
class IdlePositions(Protocol):
    """A transport whose server tells an idle stream how far it has passed (Pub/Sub
    keepalives): the loop stores that position, so an idle channel's stays inside retention."""

    def idle_position(self) -> ReplayId | None:
        """After a `receive` that brought no events: the position the stream has passed, every
        event before it delivered already; None otherwise."""
        ...


class TransportFactory(Protocol):
    def __call__(self, channel: str) -> StreamTransport: ...
