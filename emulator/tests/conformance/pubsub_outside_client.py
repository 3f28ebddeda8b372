"""The emulator's Pub/Sub API as seen by aiosfpubsub, a public client library nobody here wrote.

    python pubsub_outside_client.py descriptor
    python pubsub_outside_client.py run ADDRESS INSTANCE_URL TOKEN TENANT_ID TOPIC

aiosfpubsub (PyPI, Unlicense) ships stubs generated from Salesforce's published
`pubsub_api.proto`, and a `Client` whose `get_topic`, `get_schema_json`, `make_fetch_request`
and `decode` (Apache avro, not the fastavro the daemon uses) are used here as they are. Two
things are replaced, both because the emulator is not Salesforce's servers: its channel is a
TLS one and the emulator speaks plaintext gRPC, so `client.stub` is the library's own
`PubSubStub` on an insecure channel (and Subscribe is called on that stub, as the library's
`subscribe()` opens a TLS channel of its own); its `auth()` is a SOAP login the emulator does
not serve, so `client.metadata` is set from the OAuth login the test did.

`descriptor` prints the library's `pubsub_api.proto` descriptor (base64 of its
FileDescriptorProto); `run` prints one JSON object of what the client saw. Either runs in an
interpreter of its own: the library registers `pubsub_api.proto` in protobuf's default
descriptor pool, which would refuse the daemon's file of the same name in one process.
Nothing here imports sftriggerd.
"""

from __future__ import annotations

import base64
import json
import queue
import sys
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

# The test tells "not installed" from a failure by this exit status.
LIBRARY_MISSING = 3

try:
    import aiosfpubsub
    import avro.schema
    import grpc
    from aiosfpubsub import pubsub_api_pb2, pubsub_api_pb2_grpc
    from google.protobuf import descriptor_pb2
except ModuleNotFoundError as missing:
    print(f"pubsub_outside_client: {missing}", file=sys.stderr)
    sys.exit(LIBRARY_MISSING)


class Subscription:
    """One Subscribe call on the library's stub: FetchRequests go out as they are queued,
    responses are read one at a time (a keepalive is a response without events)."""

    def __init__(self, client: aiosfpubsub.Client, first: Any) -> None:
        self._requests: queue.Queue[Any] = queue.Queue()
        self._requests.put(first)
        self._responses = client.stub.Subscribe(self._request_stream(), metadata=client.metadata)

    def _request_stream(self) -> Iterator[Any]:
        while (request := self._requests.get()) is not None:
            yield request

    def fetch_more(self, num_requested: int) -> None:
        # Salesforce: a FetchRequest after the first needs only num_requested.
        self._requests.put(pubsub_api_pb2.FetchRequest(num_requested=num_requested))

    def next(self) -> Any:
        return next(self._responses)

    def close(self) -> None:
        self._requests.put(None)
        self._responses.cancel()


def subscribe(
    client: aiosfpubsub.Client, topic: str, replay_type: str, replay_id: str, n: int
) -> Subscription:
    first = client.make_fetch_request(topic, replay_type, bytes.fromhex(replay_id), n)
    return Subscription(client, first)


def decoded(client: aiosfpubsub.Client, consumer_event: Any) -> dict[str, Any]:
    event = consumer_event.event
    record = client.decode(client.get_schema_json(event.schema_id), event.payload)
    header = record["ChangeEventHeader"]
    return {
        "replay_id": consumer_event.replay_id.hex(),
        "id": event.id,
        "schema_id": event.schema_id,
        "entityName": header["entityName"],
        "changeType": header["changeType"],
        "recordIds": header["recordIds"],
        "changedFields": header["changedFields"],
        "Name": record.get("Name"),
    }


def described(client: aiosfpubsub.Client, response: Any) -> dict[str, Any]:
    return {
        "events": [decoded(client, event) for event in response.events],
        "latest_replay_id": response.latest_replay_id.hex(),
        "pending_num_requested": response.pending_num_requested,
        "rpc_id": response.rpc_id,
    }


def until_keepalive(client: aiosfpubsub.Client, subscription: Subscription) -> list[dict[str, Any]]:
    """Responses up to and including the first one without events."""
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["events"]:
        seen.append(described(client, subscription.next()))
    return seen


def after_more_requested(
    client: aiosfpubsub.Client, subscription: Subscription
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Keepalives the server sent before it read the new FetchRequest (a slow machine may take
    longer than a keepalive interval to send it), then responses up to the next keepalive."""
    before: list[dict[str, Any]] = []
    while not (response := described(client, subscription.next()))["events"]:
        before.append(response)
    return before, [response, *until_keepalive(client, subscription)]


def refusal(call: Any) -> dict[str, Any]:
    try:
        call()
    except grpc.RpcError as error:
        trailers = dict(error.trailing_metadata() or ())
        return {"status": error.code().name, "error_code": trailers.get("error-code")}
    return {"status": "OK", "error_code": None}


def schema_summary(schema_json: str) -> dict[str, Any]:
    schema = avro.schema.parse(schema_json)
    return {"name": schema.fullname, "fields": [field.name for field in schema.fields]}


def run(client: aiosfpubsub.Client, topic: str) -> dict[str, Any]:
    info = client.get_topic(topic)
    result: dict[str, Any] = {
        "library": {"aiosfpubsub": version("aiosfpubsub"), "avro": version("avro")},
        "topic": {
            "topic_name": info.topic_name,
            "tenant_guid": info.tenant_guid,
            "can_subscribe": info.can_subscribe,
            "can_publish": info.can_publish,
            "schema_id": info.schema_id,
        },
        "schema": schema_summary(client.get_schema_json(info.schema_id)),
    }

    # From the oldest retained event, two at a time: the batch stops at two, then keepalives.
    earliest = subscribe(client, topic, "EARLIEST", "", 2)
    first_part = until_keepalive(client, earliest)
    earliest.fetch_more(10)
    before_read, second_part = after_more_requested(client, earliest)
    earliest.close()
    result["earliest"] = {
        "after_2": first_part,
        "before_10_more_read": before_read,
        "after_10_more": second_part,
    }

    first_event = first_part[0]["events"][0]
    result["event_schema"] = schema_summary(client.get_schema_json(first_event["schema_id"]))
    first_replay = first_event["replay_id"]
    custom = subscribe(client, topic, "CUSTOM", first_replay, 10)
    result["custom"] = {"from": first_replay, "responses": until_keepalive(client, custom)}
    custom.close()

    good_metadata = client.metadata
    client.metadata = (("accesstoken", "not-a-session"), *good_metadata[1:])
    result["bad_token"] = refusal(lambda: client.get_topic(topic))
    client.metadata = good_metadata
    corrupted = subscribe(client, topic, "CUSTOM", "ff00c0ffee", 1)
    result["corrupted_replay"] = refusal(corrupted.next)
    corrupted.close()
    return result


def library_client(
    channel: grpc.Channel, address: str, instance_url: str, token: str, tenant_id: str
) -> aiosfpubsub.Client:
    host, port = address.rsplit(":", 1)
    # No auth(): the library's login is SOAP; the session comes from the test's OAuth login.
    client = aiosfpubsub.Client(instance_url, "unused", "unused", host, int(port))
    client.stub = pubsub_api_pb2_grpc.PubSubStub(channel)
    client.metadata = (
        ("accesstoken", token),
        ("instanceurl", instance_url),
        ("tenantid", tenant_id),
    )
    return client


def main(argv: list[str]) -> None:
    if argv == ["descriptor"]:
        theirs = descriptor_pb2.FileDescriptorProto()
        pubsub_api_pb2.DESCRIPTOR.CopyToProto(theirs)
        print(json.dumps({"file": base64.b64encode(theirs.SerializeToString()).decode()}))
        return
    mode, address, instance_url, token, tenant_id, topic = argv
    assert mode == "run", argv
    with grpc.insecure_channel(address) as channel:
        client = library_client(channel, address, instance_url, token, tenant_id)
        print(json.dumps(run(client, topic)))


if __name__ == "__main__":
    main(sys.argv[1:])
