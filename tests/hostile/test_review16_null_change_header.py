"""Hostile review of the Pub/Sub decoder (issue 16): decode.py promises that nothing but
MalformedMessage escapes "whatever bytes arrive", and the transport turns only that (and
AioRpcError) into a poison item. A change event schema whose ChangeEventHeader is a union
with null (`["null", {record}]`, which read_schema accepts as a change event) and a payload
holding null there make `dict(None)` raise TypeError. It escapes `receive`, the stream loop
and the source: the supervisor restarts the part, which resubscribes before the same event
and meets it again, forever (back-off up to 60 s); the trigger never moves past it, and the
poison path that exists for exactly this is bypassed."""

from __future__ import annotations

import io
import json

import pytest
from fastavro import parse_schema, schemaless_writer

from sftriggerd.events.streamed import MalformedMessage
from sftriggerd.salesforce.pubsub.decode import decode_payload

HEADER = {
    "type": "record",
    "name": "ChangeEventHeader",
    "fields": [{"name": "entityName", "type": "string"}],
}
SCHEMA = {
    "type": "record",
    "name": "AccountChangeEvent",
    "namespace": "com.sforce.eventbus",
    "fields": [
        {"name": "ChangeEventHeader", "type": ["null", HEADER]},
        {"name": "Name", "type": ["null", "string"], "default": None},
    ],
}


def test_a_null_change_event_header_is_malformed_not_a_crash() -> None:
    payload = io.BytesIO()
    schemaless_writer(payload, parse_schema(SCHEMA), {"ChangeEventHeader": None, "Name": "x"})
    with pytest.raises(MalformedMessage):
        decode_payload(json.dumps(SCHEMA), payload.getvalue())
