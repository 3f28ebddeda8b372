"""`GET /_emulator/subscribers`: when each client subscribed to a channel and last asked for
events, so a test can tell whether two subscribers were ever live on one channel at once."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import aiohttp
import pytest

from emulator.tests.streaming_helpers import Bayeux, cookie_jar
from sftriggerd_emulator.context import EmulatorSettings
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient, control

CHANNEL = "/data/AccountChangeEvent"


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    return EmulatorSettings(state_dir=tmp_path / "org", cometd_timeout_ms=300)


async def spans(http: aiohttp.ClientSession, emulator: RunningEmulator) -> list[dict[str, str]]:
    answer = await control(http, emulator.url, "subscribers")
    assert answer.status == 200, answer.body
    return list(answer.body["channels"].get(CHANNEL, []))


async def test_spans_run_from_subscribe_to_the_last_connect_or_the_unsubscribe(
    emulator: RunningEmulator, org: OrgClient, http: aiohttp.ClientSession
) -> None:
    async with (
        aiohttp.ClientSession(cookie_jar=cookie_jar()) as first_http,
        aiohttp.ClientSession(cookie_jar=cookie_jar()) as second_http,
    ):
        first = Bayeux(first_http, emulator.url, org.token)
        await first.start(CHANNEL)
        await first.events()  # held, then answered: a second ask on the channel
        [only] = await spans(http, emulator)
        assert only["client"] == first.client_id
        assert datetime.fromisoformat(only["first"]) < datetime.fromisoformat(only["last"])

        # Unsubscribing closes the span; a second client's span starts after it.
        await first.replies({**first.subscribe_message(CHANNEL), "channel": "/meta/unsubscribe"})
        closed_at = datetime.fromisoformat((await spans(http, emulator))[0]["last"])
        await first.events()  # no longer subscribed: the closed span stays as it was
        second = Bayeux(second_http, emulator.url, org.token)
        await second.start(CHANNEL)
        first_span, second_span = await spans(http, emulator)
        assert datetime.fromisoformat(first_span["last"]) == closed_at
        assert second_span["client"] == second.client_id != first.client_id
        assert datetime.fromisoformat(second_span["first"]) >= closed_at
