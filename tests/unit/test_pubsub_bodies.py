"""Bodies of events a Pub/Sub adapter delivers: `source.transport` says so, the replay id is
base64 text, and the body holds to docs/webhook.schema.json like a CometD one."""

from __future__ import annotations

import base64
import json

from sftriggerd.events.normalise import cdc_changes, from_cdc
from sftriggerd.events.payload import encode_body
from sftriggerd.events.streamed import Received
from tests.salesforce_messages import CDC_CHANNEL, cdc
from tests.webhook_schema import validator

REPLAY = bytes.fromhex("0000000000065ed8")  # opaque bytes, as Pub/Sub sends them


def pubsub_item(payload: dict[str, object]) -> Received:
    """What a Pub/Sub adapter hands the stream loop for one decoded event."""
    return Received(
        channel=CDC_CHANNEL,
        payload=payload,
        header={},
        position=REPLAY,
        identity=base64.b64encode(REPLAY).decode(),
        raw={"channel": CDC_CHANNEL, "payload": payload},
        content=payload,
        payload_path=("payload",),
        transport="pubsub",
    )


def test_a_pubsub_change_says_its_transport_and_holds_to_the_schema() -> None:
    message = cdc("UPDATE", ["001A"], Name="Acme")
    [cometd] = from_cdc("t", CDC_CHANNEL, message)
    changes = cdc_changes("t", pubsub_item(message["data"]["payload"]))
    assert isinstance(changes, list)
    [pubsub] = changes
    assert cometd.source["transport"] == "cometd"
    assert pubsub.source == {
        "kind": "streaming",
        "channel": CDC_CHANNEL,
        "replay_id": "AAAAAAAGXtg=",
        "transport": "pubsub",
    }
    # The same change read over either transport is the same event.
    assert pubsub.id == cometd.id and pubsub.record == cometd.record
    check = validator()
    for event in (cometd, pubsub):
        body = json.loads(encode_body(event))
        assert not list(check.iter_errors(body)), body
