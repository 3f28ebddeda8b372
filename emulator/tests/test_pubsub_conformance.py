"""The emulator's Pub/Sub API against a client nobody here wrote, from a proto nobody here wrote.

Salesforce's published `pubsub_api.proto` (fetched by `make conformance-proto` into
`emulator/tests/conformance/salesforce/`, see the README there) is compiled at test time with
grpc_tools into tmp_path; `conformance/pubsub_outside_client.py` runs on those stubs, in an
interpreter of its own (protobuf would refuse a second `pubsub_api.proto` in the daemon's
descriptor pool), and prints what it saw as JSON. Without the proto the test skips locally
and fails under CI (`CI` set), as the CometD conformance test does without its client.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2

from sftriggerd.salesforce.pubsub import pubsub_api_pb2 as ours
from sftriggerd_emulator.context import EmulatorSettings
from sftriggerd_emulator.identity import ORG_ID
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import OrgClient

CONFORMANCE_DIR = Path(__file__).parent / "conformance"
SALESFORCE_PROTO = CONFORMANCE_DIR / "salesforce" / "pubsub_api.proto"
CLIENT = CONFORMANCE_DIR / "pubsub_outside_client.py"
TOPIC = "/data/AccountChangeEvent"
FETCH_HINT = "make conformance-proto"
# Salesforce's documented error codes, written out rather than read from the emulator.
AUTH_ERROR = "sfdc.platform.eventbus.grpc.service.auth.error"
REPLAY_CORRUPTED = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    # Keepalives twice a second (Salesforce: within 270 s), so an idle stream shows one soon.
    return EmulatorSettings(state_dir=tmp_path / "org", pubsub_port=0, pubsub_keepalive_s=0.5)


def _require_proto() -> Path:
    if not SALESFORCE_PROTO.is_file():
        problem = f"Salesforce's pubsub_api.proto is not fetched; run `{FETCH_HINT}`"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Pub/Sub conformance test: {problem}")
        pytest.skip(problem)
    return SALESFORCE_PROTO


def _protoc(*outputs: str) -> None:
    proto = _require_proto()
    command = [sys.executable, "-m", "grpc_tools.protoc", f"-I{proto.parent}", *outputs]
    completed = subprocess.run([*command, proto.name], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr


def _fields(message: descriptor_pb2.DescriptorProto) -> dict[str, tuple[int, int, str]]:
    return {f.name: (f.number, f.type, f.type_name) for f in message.field}


def test_our_proto_is_a_subset_of_salesforces(tmp_path: Path) -> None:
    """Every message, field (name, number, type), enum value and method of our copy is
    Salesforce's: they are the wire format."""
    descriptor_set = tmp_path / "salesforce.pb"
    _protoc(f"--descriptor_set_out={descriptor_set}")
    theirs = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes()).file[0]
    mine = descriptor_pb2.FileDescriptorProto()
    ours.DESCRIPTOR.CopyToProto(mine)

    assert mine.package == theirs.package == "eventbus.v1"
    their_messages = {message.name: message for message in theirs.message_type}
    for message in mine.message_type:
        assert _fields(message).items() <= _fields(their_messages[message.name]).items()
    their_enums = {enum.name: enum for enum in theirs.enum_type}
    for enum in mine.enum_type:
        values = {(v.name, v.number) for v in enum.value}
        assert values <= {(v.name, v.number) for v in their_enums[enum.name].value}
    (their_service,) = theirs.service
    their_methods = {m.name: m for m in their_service.method}
    for method in mine.service[0].method:
        assert method == their_methods[method.name]
    assert len(mine.message_type) == 9


async def _outside_client(stubs: Path, emulator: RunningEmulator, token: str) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CLIENT),
        str(stubs),
        emulator.pubsub_address,
        emulator.url,
        token,
        ORG_ID,
        TOPIC,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # Its own interpreter sees neither the daemon nor the emulator.
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, (stdout.decode(), stderr.decode())
    result: dict[str, Any] = json.loads(stdout)
    return result


def _events(responses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for response in responses for event in response["events"]]


@pytest.mark.slow
async def test_salesforce_proto_client_reads_topics_schemas_replays_and_errors(
    tmp_path: Path, emulator: RunningEmulator, org: OrgClient
) -> None:
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    _protoc(f"--python_out={stubs}", f"--grpc_python_out={stubs}")
    names = ["Acme", "Globex", "Initech"]
    created = [await org.create("Account", {"Name": name}) for name in names]

    result = await _outside_client(stubs, emulator, org.token)

    topic = result["topic"]
    assert topic["topic_name"] == TOPIC and topic["tenant_guid"] == ORG_ID
    assert topic["can_subscribe"] and not topic["can_publish"]
    assert len(topic["schema_id"]) == 22
    schema = result["schema"]
    assert schema["schema_id"] == topic["schema_id"]
    assert schema["name"] == "com.sforce.eventbus.AccountChangeEvent"  # fastavro's full name
    assert schema["fields"][0] == "ChangeEventHeader" and "Name" in schema["fields"]

    # EARLIEST with num_requested 2: two events, pending counting down to 0, then keepalives
    # (no events, the newest replay id) until more are asked for.
    after_2 = result["earliest"]["after_2"]
    first_two = _events(after_2)
    assert [event["recordIds"] for event in first_two] == [[created[0]], [created[1]]]
    assert [event["Name"] for event in first_two] == names[:2]
    assert {event["entityName"] for event in first_two} == {"Account"}
    assert {event["changeType"] for event in first_two} == {"CREATE"}
    assert {event["schema_id"] for event in first_two} == {topic["schema_id"]}
    # A create names no changed fields (Salesforce fills changedFields for updates only).
    assert [event["changedFields"] for event in first_two] == [[], []]
    pending = [response["pending_num_requested"] for response in after_2 if response["events"]]
    assert pending == sorted(pending, reverse=True) and pending[-1] == 0
    delivered = 0
    for response in after_2[:-1]:
        delivered += len(response["events"])
        assert response["pending_num_requested"] == 2 - delivered
    keepalive = after_2[-1]
    assert keepalive["events"] == [] and keepalive["latest_replay_id"]
    assert keepalive["rpc_id"]
    after_10 = result["earliest"]["after_10_more"]
    third = _events(after_10)
    assert [event["recordIds"] for event in third] == [[created[2]]]
    assert after_10[0]["pending_num_requested"] == 9
    assert after_10[-1]["events"] == []
    assert after_10[-1]["latest_replay_id"] == third[0]["replay_id"]
    replay_ids = [event["replay_id"] for event in first_two + third]
    assert len(set(replay_ids)) == 3

    # CUSTOM after the first event: only the two after it.
    custom = result["custom"]
    assert custom["from"] == replay_ids[0]
    assert [event["replay_id"] for event in _events(custom["responses"])] == replay_ids[1:]

    assert result["bad_token"] == {"status": "UNAUTHENTICATED", "error_code": AUTH_ERROR}
    assert result["corrupted_replay"] == {
        "status": "INVALID_ARGUMENT",
        "error_code": REPLAY_CORRUPTED,
    }
