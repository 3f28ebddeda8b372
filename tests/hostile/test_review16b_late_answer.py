"""A long-poll answer the network delivers late puts a channel's old events into the inbox
of its new subscription on the same shared CometD client, and the trigger stores them, and
its position with them, before the events its old subscription had brought while it had no
inbox.

The unsubscribe is answered (the channel is not suspect), but a long-poll answer the server
made before it (from the old subscription) is still on its way; the trigger subscribes its
channel again on the same client, and that answer lands in the new inbox. The event before
it, delivered while the channel had no inbox and dropped, is replayed only after: the
position passed it unstored (a stop there, and it is lost).

The network here delays the unsubscribe, that one long-poll answer and the re-subscribe;
everything else is the real emulator over real HTTP and a real SQLite store."""

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


def gate() -> asyncio.Event:
    return asyncio.Event()


@dataclass
class LateNetwork(ChannelAnswers):
    """Holds requests and answers of `channel` until the test lets them go."""

    hold_unsubscribe: bool = False
    hold_answers: bool = False
    hold_subscribe: bool = False
    unsubscribe_arrived: asyncio.Event = field(default_factory=gate)
    release_unsubscribe: asyncio.Event = field(default_factory=gate)
    answer_held: asyncio.Event = field(default_factory=gate)
    release_answers: asyncio.Event = field(default_factory=gate)
    subscribe_arrived: asyncio.Event = field(default_factory=gate)
    release_subscribe: asyncio.Event = field(default_factory=gate)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/cometd/"):
            return await handler(request)
        meta = meta_of(await bayeux_sent(request))
        if self.hold_unsubscribe and ("/meta/unsubscribe", self.channel) in meta:
            self.hold_unsubscribe = False
            self.unsubscribe_arrived.set()
            await self.release_unsubscribe.wait()
        if self.hold_subscribe and ("/meta/subscribe", self.channel) in meta:
            self.hold_subscribe = False
            self.subscribe_arrived.set()
            await self.release_subscribe.wait()
        is_connect = self.count_connect(meta)
        response = await handler(request)
        if is_connect and self.count_answer(response):
            if self.hold_answers:
                self.hold_answers = False
                self.answer_held.set()
                await self.release_answers.wait()
        return response

    def end(self) -> None:
        self.hold_unsubscribe = self.hold_answers = self.hold_subscribe = False
        for event in (self.release_unsubscribe, self.release_answers, self.release_subscribe):
            event.set()


@pytest.fixture
def network() -> LateNetwork:
    return LateNetwork(ACCOUNTS)


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    return hostile_settings(tmp_path)


@pytest.fixture
def emulator_middlewares(network: LateNetwork) -> tuple[Middleware, ...]:
    return (network.middleware,)


async def test_a_late_answer_of_the_old_subscription_never_passes_unstored_events(
    emulator: RunningEmulator,
    network: LateNetwork,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    async with two_triggers_on_one_client(
        emulator, http, tmp_path, before_stop=network.end
    ) as shared:
        accounts, org = shared.accounts, shared.org
        first = await org.create("Account", {"Name": "Stored first"})
        await eventually(lambda: first in shared.stored(), 20)

        # `accounts` stops (its lease moved, say); its unsubscribe is slow on the way.
        network.hold_unsubscribe = True
        stopping = asyncio.create_task(accounts.stop())
        await asyncio.wait_for(network.unsubscribe_arrived.wait(), 5)
        seen = network.channel_answers
        dropped = await org.create("Account", {"Name": "While the channel has no inbox"})
        await network.routed(seen)
        network.hold_answers = True
        late = await org.create("Account", {"Name": "In an answer the network delays"})
        await asyncio.wait_for(network.answer_held.wait(), 5)
        network.release_unsubscribe.set()  # answered in time: nothing suspect
        await stopping

        # `accounts` starts again on the same client; the late answer lands meanwhile.
        network.hold_subscribe = True
        accounts.start()
        await asyncio.wait_for(network.subscribe_arrived.wait(), 5)
        connects = network.connects
        network.release_answers.set()
        await eventually(lambda: network.connects > connects, 20)
        network.release_subscribe.set()
        await eventually(lambda: {dropped, late} <= set(shared.stored()), 20)

        # Each batch is stored with the position of its last event: the dropped account
        # was stored before the later one, else the position passed it unstored.
        order = shared.stored()
        assert order.index(dropped) < order.index(late), order
