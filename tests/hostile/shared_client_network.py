"""Two triggers on the daemon's one shared CometD client, and the network between that client
and the bundled emulator, for the hostile tests that make the network late, lossy or
talkative with one channel's Bayeux messages.

A test module defines its network (an aiohttp middleware, read with the helpers here) and
puts it in front of the emulator by overriding `emulator_middlewares`, and the short
long-polls by overriding `emulator_settings` with `hostile_settings`. Everything else is
the real emulator over real HTTP, and each trigger stores into a real SQLite store."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from sftriggerd.sources.cometd_hub import INBOX_LIMIT, CometdHub
from sftriggerd.sources.context import SourceContext
from sftriggerd.sources.streaming import StreamingSource
from tests.integration.streaming_rig import StreamingRig, make_streaming_rig
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient
from tests.support.waiting import eventually

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ACCOUNTS = "/data/AccountChangeEvent"


async def bayeux_sent(request: web.Request) -> list[dict[str, Any]]:
    """The Bayeux messages of a `/cometd/` request."""
    sent: list[dict[str, Any]] = json.loads(await request.read())
    return sent


def meta_of(sent: list[dict[str, Any]]) -> set[tuple[object, object]]:
    """(channel, subscription) of each message: ("/meta/unsubscribe", "/data/...") and so on."""
    return {(message.get("channel"), message.get("subscription")) for message in sent}


def answer_carries(response: web.StreamResponse, channel: str) -> bool:
    """Whether an answer holds an event of `channel`."""
    if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return False
    return any(reply.get("channel") == channel for reply in json.loads(response.body))


@dataclass
class ChannelAnswers:
    """The client's long-polls (`connects`) and how many of their answers carried an event
    of `channel`, as a network middleware that sees them counts them."""

    channel: str
    channel_answers: int = 0
    connects: int = 0

    def count_connect(self, meta: set[tuple[object, object]]) -> bool:
        """Whether the request is a long-poll; counted if so."""
        is_connect = any(channel == "/meta/connect" for channel, _ in meta)
        self.connects += int(is_connect)
        return is_connect

    def count_answer(self, response: web.StreamResponse) -> bool:
        """Whether a long-poll's answer carried an event of `channel`; counted if so."""
        carries = answer_carries(response, self.channel)
        self.channel_answers += int(carries)
        return carries

    async def routed(self, seen: int) -> None:
        """Until more than `seen` answers carried an event of `channel` and the client polled
        again after the last of them (so that the client has routed it)."""
        await eventually(lambda: self.channel_answers > seen, 20)
        connects = self.connects
        await eventually(lambda: self.connects > connects, 20)


@dataclass
class SharedClient:
    """`accounts` (Account, its CDC channel) and `contacts` (Contact) read through one hub,
    and a REST client of the org to change records with."""

    accounts: StreamingRig
    contacts: StreamingRig
    org: OrgClient

    def stored(self) -> list[str | None]:
        """The record ids `accounts` stored, in the order it stored them."""
        return [record for _, record in self.accounts.changes()]


async def hub_rig(
    emulator: RunningEmulator,
    http: aiohttp.ClientSession,
    state_dir: Path,
    hub_of: Callable[[StreamingRig], CometdHub],
    **trigger: Any,
) -> StreamingRig:
    """A streaming rig whose source reads through the daemon-wide hub `hub_of` gives."""
    rig = await make_streaming_rig(emulator.url, http, state_dir, **trigger)
    context = SourceContext(
        client=rig.client,
        ingest=rig.ingest,
        store=rig.store,
        metrics=rig.metrics,
        cometd=hub_of(rig),
    )
    rig.source = StreamingSource(
        rig.source.trigger, context, rig.source.status, backoff_cap_s=0.2, stall_margin_s=1.0
    )
    return rig


@asynccontextmanager
async def two_triggers_on_one_client(
    emulator: RunningEmulator,
    http: aiohttp.ClientSession,
    tmp_path: Path,
    *,
    inbox_limit: int = INBOX_LIMIT,
    before_stop: Callable[[], None] = lambda: None,
) -> AsyncIterator[SharedClient]:
    """Both triggers started and connected; at the end `before_stop` (to let held messages
    go), then both stopped, their stores closed and the hub closed."""
    hubs: list[CometdHub] = []

    def hub_of(rig: StreamingRig) -> CometdHub:
        if not hubs:
            hubs.append(CometdHub(rig.client, stall_margin_s=1.0, inbox_limit=inbox_limit))
        return hubs[0]

    accounts = await hub_rig(emulator, http, tmp_path / "a", hub_of)
    contacts = await hub_rig(
        emulator, http, tmp_path / "c", hub_of, name="contacts", object="Contact",
        fields=["LastName"],
    )  # fmt: skip
    org = await OrgClient.login(http, emulator.url)
    try:
        for rig in (accounts, contacts):
            rig.start()
            await rig.connected()
        yield SharedClient(accounts, contacts, org)
    finally:
        before_stop()
        for rig in (accounts, contacts):
            await rig.stop()
        for rig in (accounts, contacts):
            await rig.store.close()
        for hub in hubs:
            await hub.close()
