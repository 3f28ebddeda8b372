"""A channel one trigger left and took up again on the shared CometD client is silenced for
good when the server acts on the old unsubscribe after the new subscribe.

The hub gives an unsubscribe two seconds and then forgets it. The request itself may still
reach Salesforce (it was sent; only the answer is late), and Salesforce then drops the
channel's subscription on the one client every trigger shares, after the trigger has
subscribed it again. The trigger keeps an inbox that the other channels' long-poll answers
keep "alive", so it looks connected and healthy while no event of its channel ever comes.

Here the network delays the unsubscribe until the re-subscribe has been answered; everything
else is the real emulator over real HTTP and a real SQLite store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from sftriggerd_emulator.context import EmulatorSettings
from tests.hostile.shared_client_network import (
    ACCOUNTS,
    Handler,
    bayeux_sent,
    meta_of,
    two_triggers_on_one_client,
)
from tests.hostile.stream_tamper import hostile_settings
from tests.support.emulator import Middleware, RunningEmulator
from tests.support.waiting import eventually


@dataclass
class LateUnsubscribes:
    """Holds every unsubscribe of `channel` (while `holding`) until a subscribe of it has
    been answered, then lets the server act on it: a slow network path, not a refusal."""

    channel: str
    holding: bool = False
    held: list[asyncio.Task[web.StreamResponse]] = field(default_factory=list)
    resubscribed: asyncio.Event = field(default_factory=asyncio.Event)
    late_unsubscribes_done: int = 0

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/cometd/"):
            return await handler(request)
        meta = meta_of(await bayeux_sent(request))
        if self.holding and ("/meta/unsubscribe", self.channel) in meta:
            task = asyncio.create_task(self._late(request, handler))
            self.held.append(task)
            return await asyncio.shield(task)
        response = await handler(request)
        if self.held and ("/meta/subscribe", self.channel) in meta:
            self.resubscribed.set()
        return response

    async def _late(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        await self.resubscribed.wait()
        response = await handler(request)
        self.late_unsubscribes_done += 1
        return response


@pytest.fixture
def late() -> Iterator[LateUnsubscribes]:
    network = LateUnsubscribes(ACCOUNTS)
    yield network
    for task in network.held:
        task.cancel()


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    return hostile_settings(tmp_path)


@pytest.fixture
def emulator_middlewares(late: LateUnsubscribes) -> tuple[Middleware, ...]:
    return (late.middleware,)


async def test_a_late_unsubscribe_silences_the_resubscribed_channel_for_good(
    emulator: RunningEmulator,
    late: LateUnsubscribes,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    # A small inbox, so three events at once send the trigger round.
    async with two_triggers_on_one_client(emulator, http, tmp_path, inbox_limit=2) as shared:
        accounts, contacts, org = shared.accounts, shared.contacts, shared.org
        late.holding = True
        # More than the inbox holds, in one answer: `accounts` leaves its channel (the
        # unsubscribe is slow) and subscribes it again at once on the same client.
        burst = await org.create_many("Account", [{"Name": f"Burst{i}"} for i in range(3)])
        await eventually(lambda: late.late_unsubscribes_done > 0, 20)
        await accounts.wait_events(len(burst), timeout_s=20)  # the back-fill of the burst
        await accounts.connected()

        later = await org.create("Account", {"Name": "After the late unsubscribe"})
        await contacts.wait_events(0)
        # The account streamed after the re-subscribe reaches the store.
        await eventually(lambda: later in shared.stored(), 20)
