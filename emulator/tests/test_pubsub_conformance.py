"""The emulator's Pub/Sub API against a client library nobody here wrote.

aiosfpubsub (a dev dependency, see `emulator/tests/conformance/README.md`) ships stubs generated
from Salesforce's published `pubsub_api.proto` and a client that decodes payloads with Apache
avro. `conformance/pubsub_outside_client.py` drives it in an interpreter of its own (protobuf
would refuse its `pubsub_api.proto` beside the daemon's in one descriptor pool) and prints JSON;
the tests assert on it. Without the library the tests fail, with the command that installs it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
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

CLIENT = Path(__file__).parent / "conformance" / "pubsub_outside_client.py"
TOPIC = "/data/AccountChangeEvent"
LIBRARY_VERSION = "0.0.6"
# Outside CI, a directory of the library and its imports installed with `pip --target`, for a
# checkout whose venv predates them; CI uses the venv `make test` installs, so ignores it.
OUTSIDE_DEPS = "SFTRIGGERD_OUTSIDE_DEPS"
INSTALL_HINT = (
    "aiosfpubsub is not importable: run `make .venv/.installed` (the dev extras), or "
    "`pip install --target DIR aiosfpubsub==0.0.6 avro httpx defusedxml certifi` and set "
    f"{OUTSIDE_DEPS}=DIR"
)
LIBRARY_MISSING = 3  # pubsub_outside_client.py's exit status when an import fails
# Salesforce's documented error codes, written out rather than read from the emulator.
AUTH_ERROR = "sfdc.platform.eventbus.grpc.service.auth.error"
REPLAY_CORRUPTED = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    # Keepalives twice a second (Salesforce: within 270 s), so an idle stream shows one soon.
    return EmulatorSettings(state_dir=tmp_path / "org", pubsub_port=0, pubsub_keepalive_s=0.5)


def _outside_env() -> dict[str, str]:
    # Its own interpreter sees neither the daemon nor the emulator.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", OUTSIDE_DEPS)}
    if (deps := os.environ.get(OUTSIDE_DEPS)) and not os.environ.get("CI"):
        env["PYTHONPATH"] = deps
    return env


async def _outside_client(*args: str) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CLIENT),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_outside_env(),
    )
    try:
        # Generous: the whole conversation takes about a second; this only bounds a hang.
        stdout, stderr = await asyncio.wait_for(process.communicate(), 90)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode == LIBRARY_MISSING:
        pytest.fail(f"{INSTALL_HINT} ({stderr.decode().strip()})")
    assert process.returncode == 0, (stdout.decode(), stderr.decode())
    result: dict[str, Any] = json.loads(stdout)
    return result


def _fields(message: descriptor_pb2.DescriptorProto) -> dict[str, tuple[int, int, int, str]]:
    return {f.name: (f.number, f.label, f.type, f.type_name) for f in message.field}


async def test_our_proto_is_a_subset_of_salesforces() -> None:
    """Every message, field (name, number, type), enum value and method of our copy is in
    Salesforce's, as the library's stubs carry it: they are the wire format."""
    printed = await _outside_client("descriptor")
    theirs = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(printed["file"]))
    assert theirs.name == "pubsub_api.proto"
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


def _events(responses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for response in responses for event in response["events"]]


@pytest.mark.slow
async def test_outside_library_reads_topics_schemas_replays_and_errors(
    emulator: RunningEmulator, org: OrgClient
) -> None:
    names = ["Acme", "Globex", "Initech"]
    created = [await org.create("Account", {"Name": name}) for name in names]

    result = await _outside_client(
        "run", emulator.pubsub_address, org.instance_url, org.token, ORG_ID, TOPIC
    )

    assert result["library"]["aiosfpubsub"] == LIBRARY_VERSION
    topic = result["topic"]
    assert topic["topic_name"] == TOPIC and topic["tenant_guid"] == ORG_ID
    assert topic["can_subscribe"] and not topic["can_publish"]
    assert len(topic["schema_id"]) == 22
    schema = result["schema"]
    assert schema["name"] == "com.sforce.eventbus.AccountChangeEvent"  # Apache avro's full name
    assert schema["fields"][0] == "ChangeEventHeader" and "Name" in schema["fields"]
    assert result["event_schema"] == schema  # the events' schema id is the one GetTopic names

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
    # Keepalives sent before the emulator read the request for 10 more still have none pending.
    before_read = result["earliest"]["before_10_more_read"]
    assert {response["pending_num_requested"] for response in before_read} <= {0}
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
