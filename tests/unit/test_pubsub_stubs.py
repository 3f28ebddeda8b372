"""The committed Pub/Sub API messages match the .proto they are generated from, and speak
the service's wire format (field numbers and types are the wire, whatever the names)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sftriggerd.salesforce.pubsub import pubsub_api_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path("sftriggerd/salesforce/pubsub")


def test_the_committed_stubs_are_what_the_proto_generates(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{ROOT / 'daemon'}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            str(ROOT / "daemon" / PACKAGE / "pubsub_api.proto"),
        ],
        check=True,
    )
    for name in ("pubsub_api_pb2.py", "pubsub_api_pb2.pyi"):
        committed = (ROOT / "daemon" / PACKAGE / name).read_text()
        assert (out / PACKAGE / name).read_text() == committed, f"{name}: run `make proto`"


def test_a_fetch_request_is_encoded_with_the_services_field_numbers() -> None:
    request = pb.FetchRequest(
        topic_name="/data/AccountChangeEvent",
        replay_preset=pb.CUSTOM,
        replay_id=b"\x00\x01",
        num_requested=100,
    )
    wire = request.SerializeToString()
    topic = b"/data/AccountChangeEvent"
    # field 1 (bytes), 2 (varint), 3 (bytes), 4 (varint)
    assert wire == (
        b"\x0a" + bytes([len(topic)]) + topic + b"\x10\x02" + b"\x1a\x02\x00\x01" + b"\x20\x64"
    )


def test_a_fetch_response_is_read_from_the_services_field_numbers() -> None:
    event = b"\x0a\x03abc\x12\x02s1\x1a\x01\x07"  # ProducerEvent: id, schema_id, payload
    consumer = b"\x0a" + bytes([len(event)]) + event + b"\x12\x03\x01\x02\x03"
    wire = b"\x0a" + bytes([len(consumer)]) + consumer + b"\x12\x01\x09" + b"\x20\x05"
    response = pb.FetchResponse.FromString(wire)
    assert [e.replay_id for e in response.events] == [b"\x01\x02\x03"]
    assert response.events[0].event.schema_id == "s1"
    assert response.events[0].event.payload == b"\x07"
    assert response.latest_replay_id == b"\x09"
    assert response.pending_num_requested == 5
