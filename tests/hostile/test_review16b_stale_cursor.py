"""The stored position of a trigger on the shared CometD client moves past events it never
stored, when an old subscription of its channel is still live on that client.

The hub forgets an unsubscribe it got no answer to within two seconds (here the network
loses it), and the trigger subscribes its channel again on the same client. Its new inbox
exists before the new subscribe is answered, so the long-poll routes into it what the old
subscription (far ahead: its overflowed events were dropped) still brings. The trigger
stores that event first, and its position with it, ahead of the events the overflow
dropped. Stopped there (a restart, a lost lease), it resumes past them: they are lost.

The network here loses the unsubscribe, is slow with one subscribe and with the long-poll
answers after it; everything else is the real emulator over real HTTP and a real SQLite
store."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from sftriggerd_emulator.context import EmulatorSettings
from tests.hostile.shared_client_network import (
    ACCOUNTS,
    ChannelAnswers,
    Handler,
    bayeux_sent,
    meta_of,
    two_triggers_on_one_client,
)
from tests.hostile.stream_tamper import hostile_settings
from tests.support.emulator import Middleware, RunningEmulator
from tests.support.waiting import eventually


@dataclass
class SlowNetwork(ChannelAnswers):
    """What happens to the Bayeux requests of `channel` on their way, all off at first."""

    lose_unsubscribes: bool = False
    hold_subscribe: bool = False
    subscribe_held: asyncio.Event = field(default_factory=asyncio.Event)
    release_subscribe: asyncio.Event = field(default_factory=asyncio.Event)
    gone: asyncio.Event = field(default_factory=asyncio.Event)  # the test is over

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/cometd/"):
            return await handler(request)
        meta = meta_of(await bayeux_sent(request))
        if self.lose_unsubscribes and ("/meta/unsubscribe", self.channel) in meta:
            await self.gone.wait()  # never reaches the server
            return web.json_response([])
        if self.hold_subscribe and ("/meta/subscribe", self.channel) in meta:
            self.hold_subscribe = False
            self.subscribe_held.set()
            waits = {asyncio.ensure_future(e.wait()) for e in self._ends()}
            _, waiting = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for wait in waiting:
                wait.cancel()
        if self.count_connect(meta):
            response = await handler(request)
            self.count_answer(response)
            return response
        return await handler(request)

    def _ends(self) -> tuple[asyncio.Event, asyncio.Event]:
        return self.release_subscribe, self.gone

    def end(self) -> None:
        self.lose_unsubscribes = self.hold_subscribe = False
        for event in (self.release_subscribe, self.gone):
            event.set()


@pytest.fixture
def network() -> SlowNetwork:
    return SlowNetwork(ACCOUNTS)


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    return hostile_settings(tmp_path)


@pytest.fixture
def emulator_middlewares(network: SlowNetwork) -> tuple[Middleware, ...]:
    return (network.middleware,)


async def test_a_stale_subscription_moves_the_position_past_unstored_events(
    emulator: RunningEmulator,
    network: SlowNetwork,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    async with two_triggers_on_one_client(
        emulator, http, tmp_path, before_stop=network.end
    ) as shared:
        accounts, org = shared.accounts, shared.org
        first = await org.create("Account", {"Name": "Stored first"})
        await eventually(lambda: first in shared.stored(), 20)

        # `accounts` stops (its lease went to another replica, say) while `contacts` keeps
        # the client; its unsubscribe is lost on the way.
        network.lose_unsubscribes = True
        await accounts.stop()
        seen = network.channel_answers
        missed = await org.create_many("Account", [{"Name": f"Missed{i}"} for i in range(3)])
        await network.routed(seen)  # brought by the old subscription, read by no one

        # `accounts` starts again (its lease came back) on the same client; the network is
        # slow with its subscribe, and the old subscription brings the next account.
        network.hold_subscribe = True
        accounts.start()
        await asyncio.wait_for(network.subscribe_held.wait(), 20)
        seen = network.channel_answers
        stale = await org.create("Account", {"Name": "Through the old subscription"})
        await network.routed(seen)
        network.release_subscribe.set()
        await eventually(lambda: {*missed, stale} <= set(shared.stored()), 20)

        # Each batch is stored with the position of its last event: the missed accounts
        # were stored before anything after them, else the position passed them unstored.
        order = shared.stored()
        assert all(order.index(record) < order.index(stale) for record in missed), order
