"""Whatever a CometD message holds, reading its envelope never raises: it gives a `Received`
item whose position is resumable or None, whose payload sits where `raw` holds it, and which
every normaliser reads or refuses with MalformedMessage only. The status changes the stream
loop makes are methods of TriggerStatus, checked here as the status page reads them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftriggerd.events.cometd_envelope import MAX_REPLAY_ID, read_message
from sftriggerd.events.normalise import (
    MalformedMessage,
    cdc_changes,
    generic_event,
    platform_event,
    pushtopic_change,
)
from sftriggerd.events.streamed import Received
from sftriggerd.sources.status import TriggerStatus
from tests.salesforce_messages import CDC_CHANNEL, cdc
from tests.unit.test_cometd_properties import JSON

CHANNELS = st.sampled_from([CDC_CHANNEL, "/event/Low_Ink__e", "/topic/Inv", "/u/Notes"])
MESSAGES = JSON | st.fixed_dictionaries(
    {"channel": CHANNELS, "data": st.fixed_dictionaries({"event": JSON, "payload": JSON})}
)


@settings(max_examples=300, deadline=None)
@given(channel=CHANNELS, message=MESSAGES)
def test_any_message_reads_into_an_item_every_normaliser_takes_or_refuses(
    channel: str, message: Any
) -> None:
    item = read_message(channel, message)
    assert item.channel == channel and item.raw is message
    position = item.position
    assert position is None or (type(position) is int and 0 <= position <= MAX_REPLAY_ID)
    if item.unreadable is None:
        assert isinstance(message, dict) and isinstance(message.get("data"), dict)
        assert item.payload is message["data"].get(item.payload_path[-1])
    for normalise in (
        lambda i: cdc_changes("t", i),
        lambda i: platform_event("t", i),
        lambda i: pushtopic_change("t", "Inv", i),
        lambda i: generic_event("t", i),
    ):
        try:
            normalise(item)
        except MalformedMessage:
            pass


def test_an_unreadable_message_is_refused_with_its_reason_and_keeps_its_position() -> None:
    item = read_message(CDC_CHANNEL, {"data": "not an object", "replay": 3})
    assert item.unreadable == "message has no data object" and item.position is None
    with pytest.raises(MalformedMessage, match="no data object"):
        cdc_changes("t", item)


def test_a_narrowed_payload_replaces_only_the_payload_of_the_message() -> None:
    message = cdc("UPDATE", ["001A", "001B"], Name="Acme")
    item = read_message(CDC_CHANNEL, message)
    assert isinstance(item.payload, dict)
    narrowed = item.raw_with_payload({**item.payload, "Name": "Other"})
    assert isinstance(narrowed, dict)
    assert narrowed["data"]["payload"]["Name"] == "Other"
    assert narrowed["data"]["event"] is message["data"]["event"]
    assert message["data"]["payload"]["Name"] == "Acme"  # the message itself is untouched


def test_an_item_from_another_transport_normalises_alike() -> None:
    """A payload and a position without any CometD envelope (as a Pub/Sub adapter will
    deliver them): the same events, named by the same identity."""
    message = cdc("UPDATE", ["001A"], Name="Acme")
    via_cometd = cdc_changes("t", read_message(CDC_CHANNEL, message))
    bare = Received(
        channel=CDC_CHANNEL,
        payload=message["data"]["payload"],
        header=None,
        position=b"\x00\x01",
        identity=message["data"]["event"]["replayId"],
        raw={"payload": message["data"]["payload"]},
        content=message["data"]["payload"],
        payload_path=("payload",),
    )
    via_bare = cdc_changes("t", bare)
    assert isinstance(via_cometd, list) and isinstance(via_bare, list)
    assert [e.id for e in via_bare] == [e.id for e in via_cometd]
    assert [e.record for e in via_bare] == [e.record for e in via_cometd]


def test_status_methods_tell_the_status_page_what_happened() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    status = TriggerStatus(name="t", mode="streaming", mode_reason="test")
    status.subscribed(now)
    assert (status.connected, status.state, status.caught_up_to) == (True, "running", now)
    status.fault("Unknown client")
    assert status.as_json()["state"] == "running" and status.last_error == "Unknown client"
    status.fault("channel does not exist", failed=True)
    status.disconnected()
    assert (status.connected, status.state) == (False, "failed")
    status.advanced("replay_id 7", now)
    assert status.as_json()["checkpoint"] == "replay_id 7"
    status.advanced(None, now)
    assert status.checkpoint == "replay_id 7"
    status.restarting("boom")
    assert status.as_json()["last_error"] == "restarting after: boom"
    status.restarting()
    shown = status.as_json()
    assert (shown["checkpoint"], shown["state"]) == (None, "starting")
    status.polled("2026-01-01T00:00:00.000Z", now, now)
    shown = status.as_json()
    assert (shown["state"], shown["last_error"], status.last_success_at) == ("running", None, now)
