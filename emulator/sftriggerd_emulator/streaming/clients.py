"""Bayeux clients: who handshook, what they subscribe to, and how held connects wake up.

A client lives from its handshake until it disconnects, is forgotten, or goes longer than
`cometd_client_expiry_s` without a `/meta/connect` after its last answer (Salesforce's 40 s
"reconnect timeout"). Time is the emulator clock's, so a test may advance it instead of
waiting. A client whose connect is being held never expires.

A subscription is a cursor into its channel's stream: it has seen every event up to the
cursor. Delivering moves the cursor, so a re-subscribe with a stored replay id, or a new
client after a restart, picks up exactly where the client says it is.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from sftriggerd_emulator.context import EmulatorSettings
from sftriggerd_emulator.streaming.channels import ChannelView
from sftriggerd_emulator.streaming.streams import StoredEvent, Stream

_CLIENT_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def new_client_id() -> str:
    """26 lower-case letters and digits, like `41kdiuvgig2tfxdh9weakuiwyh`."""
    return "".join(secrets.choice(_CLIENT_ID_ALPHABET) for _ in range(26))


class WakeReason(Enum):
    """Why a held connect stopped waiting, other than its own timeout or new events."""

    SUPERSEDED = "superseded"  # a newer connect of the same client arrived
    CUT = "cut"  # /_emulator/cometd/cut: the network dropped the poll
    CUT_500 = "cut_500"  # /_emulator/cometd/cut with mode 500
    GONE = "gone"  # the client was forgotten or disconnected
    SHUTDOWN = "shutdown"
    SESSION_ENDED = "session_ended"  # the caller's token was revoked or expired meanwhile
    REFUSED = "refused"  # /_emulator/cometd/unknown-client armed: answer 403::Unknown client


@dataclass
class Hold:
    """One held `/meta/connect`; setting `wake` makes it re-check why it should answer."""

    wake: asyncio.Event = field(default_factory=asyncio.Event)
    reason: WakeReason | None = None

    def interrupt(self, reason: WakeReason) -> None:
        self.reason = reason
        self.wake.set()


@dataclass
class Subscription:
    view: ChannelView
    cursor: int  # the replay id of the last event this subscription has seen

    def pending(self, stream: Stream) -> bool:
        """Whether the stream holds an event for this subscription past its cursor.

        Events the view does not admit are stepped over on the way, so a filtered
        channel does not look busy because of other objects' changes.
        """
        for event in stream.after(self.cursor):
            if self.view.admits(event):
                return True
            self.cursor = event.replay_id
        return False

    def take(self, stream: Stream, limit: int) -> list[StoredEvent]:
        taken: list[StoredEvent] = []
        for event in stream.after(self.cursor):
            if len(taken) >= limit:
                break
            self.cursor = event.replay_id
            if self.view.admits(event):
                taken.append(event)
        return taken


@dataclass
class Client:
    client_id: str
    user_id: str
    browser_id: str
    last_seen: datetime
    connected: bool = False  # has had its first /meta/connect
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    hold: Hold | None = None

    def nudge(self) -> None:
        """Makes a held connect look again for events."""
        if self.hold is not None:
            self.hold.wake.set()


class ClientRegistry:
    """Live clients by id, with expiry measured on the emulator clock.

    The limit and the expiry are read from the settings at each use, so a test may change
    them on a running emulator.
    """

    def __init__(self, settings: EmulatorSettings) -> None:
        self._settings = settings
        self._clients: dict[str, Client] = {}

    def add(self, user_id: str, browser_id: str, now: datetime) -> Client | None:
        """A new client, or None when the org's concurrent-client limit is reached."""
        self.expire(now)
        if len(self._clients) >= self._settings.max_cometd_clients:
            return None
        client = Client(new_client_id(), user_id, browser_id, now)
        self._clients[client.client_id] = client
        return client

    def get(self, client_id: object, now: datetime) -> Client | None:
        """The live client with this id; an expired one is forgotten on the way."""
        if not isinstance(client_id, str):
            return None
        client = self._clients.get(client_id)
        if client is not None and self._expired(client, now):
            self.remove(client)
            return None
        return client

    def remove(self, client: Client) -> None:
        if self._clients.get(client.client_id) is client:
            del self._clients[client.client_id]
        if client.hold is not None:
            client.hold.interrupt(WakeReason.GONE)

    def expire(self, now: datetime) -> int:
        expired = [client for client in self._clients.values() if self._expired(client, now)]
        for client in expired:
            self.remove(client)
        return len(expired)

    def _expired(self, client: Client, now: datetime) -> bool:
        expiry = timedelta(seconds=self._settings.cometd_client_expiry_s)
        return client.hold is None and now - client.last_seen > expiry

    def forget_all(self) -> int:
        clients = list(self._clients.values())
        for client in clients:
            self.remove(client)
        return len(clients)

    def clients(self) -> list[Client]:
        return list(self._clients.values())

    def nudge_all(self) -> None:
        for client in self._clients.values():
            client.nudge()

    def interrupt_holds(self, reason: WakeReason) -> int:
        """Interrupts every held connect; returns how many there were."""
        held = [client.hold for client in self._clients.values() if client.hold is not None]
        for hold in held:
            hold.interrupt(reason)
        return len(held)
