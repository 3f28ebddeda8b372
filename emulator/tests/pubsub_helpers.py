"""A bare-hands Pub/Sub API client for the emulator's tests: a grpc.aio channel, the
committed messages, and nothing clever. Decoding is written here from Salesforce's
documentation (Avro with the schema GetSchema gives, bitmaps over schema positions), not
borrowed from the emulator's encoder, so the two check each other.
"""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass
from typing import Any

import grpc
from fastavro import parse_schema, schemaless_reader

from sftriggerd.salesforce.pubsub import pubsub_api_pb2 as pb
from sftriggerd_emulator.identity import ORG_ID
from tests.support.emulator import RunningEmulator

SERVICE = "/eventbus.v1.PubSub/"
# Long enough for a loaded test machine, far below any test timeout.
WAIT_S = 5.0

StreamCall = grpc.aio.StreamStreamCall[pb.FetchRequest, pb.FetchResponse]


def auth_metadata(emulator: RunningEmulator, token: str) -> tuple[tuple[str, str], ...]:
    return (("accesstoken", token), ("instanceurl", emulator.url), ("tenantid", ORG_ID))


class Subscriber:
    """One Subscribe call: requests are written in order, responses read one by one. A read
    that times out stays pending (cancelling it would cancel the call)."""

    def __init__(self, call: StreamCall, first: pb.FetchRequest) -> None:
        self.call = call
        self._writing: asyncio.Future[None] = asyncio.ensure_future(self._write(first))
        self._reading: asyncio.Future[object] | None = None

    async def _write(self, request: pb.FetchRequest) -> None:
        try:
            await self.call.write(request)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass  # the call has ended; reading says how

    async def send(self, request: pb.FetchRequest) -> None:
        await self._writing
        self._writing = asyncio.ensure_future(self._write(request))
        await self._writing

    async def fetch(self, num_requested: int, topic: str = "") -> None:
        await self.send(pb.FetchRequest(topic_name=topic, num_requested=num_requested))

    async def read(self, timeout: float = WAIT_S) -> object:
        """The next response, or grpc.aio.EOF; raises TimeoutError, or the call's error."""
        if self._reading is None:
            self._reading = asyncio.ensure_future(self.call.read())
        done, _ = await asyncio.wait({self._reading}, timeout=timeout)
        if not done:
            raise TimeoutError
        reading, self._reading = self._reading, None
        return reading.result()

    async def next(self, timeout: float = WAIT_S) -> pb.FetchResponse:
        response = await self.read(timeout)
        assert isinstance(response, pb.FetchResponse), response
        return response

    async def events(self, count: int, timeout: float = WAIT_S) -> list[pb.ConsumerEvent]:
        """Reads responses until `count` events came (keepalives in between are skipped)."""
        events: list[pb.ConsumerEvent] = []
        while len(events) < count:
            events += list((await self.next(timeout)).events)
        assert len(events) == count, events
        return events

    async def error(self, timeout: float = WAIT_S) -> grpc.aio.AioRpcError:
        """The error the call ends with (responses before it are skipped)."""
        try:
            while True:
                if await self.read(timeout) is grpc.aio.EOF:
                    raise AssertionError("the stream ended without an error")
        except grpc.aio.AioRpcError as error:
            return error


@dataclass
class PubSubClient:
    channel: grpc.aio.Channel
    metadata: tuple[tuple[str, str], ...]

    async def get_topic(self, name: str) -> pb.TopicInfo:
        call = self.channel.unary_unary(
            SERVICE + "GetTopic",
            request_serializer=pb.TopicRequest.SerializeToString,
            response_deserializer=pb.TopicInfo.FromString,
        )
        info = await call(pb.TopicRequest(topic_name=name), metadata=self.metadata)
        assert isinstance(info, pb.TopicInfo)
        return info

    async def get_schema(self, schema_id: str) -> dict[str, Any]:
        call = self.channel.unary_unary(
            SERVICE + "GetSchema",
            request_serializer=pb.SchemaRequest.SerializeToString,
            response_deserializer=pb.SchemaInfo.FromString,
        )
        info = await call(pb.SchemaRequest(schema_id=schema_id), metadata=self.metadata)
        assert isinstance(info, pb.SchemaInfo) and info.schema_id == schema_id
        schema: dict[str, Any] = json.loads(info.schema_json)
        return schema

    def subscribe(self, first: pb.FetchRequest) -> Subscriber:
        call = self.channel.stream_stream(
            SERVICE + "Subscribe",
            request_serializer=pb.FetchRequest.SerializeToString,
            response_deserializer=pb.FetchResponse.FromString,
        )(metadata=self.metadata)
        return Subscriber(call, first)

    async def decode(self, event: pb.ConsumerEvent) -> tuple[dict[str, Any], dict[str, Any]]:
        """(record, schema) of an event, with the schema fetched by its id."""
        schema = await self.get_schema(event.event.schema_id)
        record = schemaless_reader(io.BytesIO(event.event.payload), parse_schema(schema), None)
        assert isinstance(record, dict)
        return record, schema


def error_code(error: grpc.aio.AioRpcError) -> str | None:
    for key, value in error.trailing_metadata() or ():
        if key == "error-code":
            return str(value)
    return None


def field_names(bitmaps: list[str], schema: dict[str, Any]) -> list[str]:
    """Field names a bitmap list stands for, read as Salesforce's documentation says: bit i of
    `0x...` is the field at position i; `N-0x...` are nested fields of compound field N."""
    fields = schema["fields"]
    named = _named_records(schema)
    names: list[str] = []
    for bitmap in bitmaps:
        parent, dash, bits = bitmap.rpartition("-") if "-" in bitmap else ("", "", bitmap)
        set_bits = _bits(bits)
        if not dash:
            names += [fields[i]["name"] for i in set_bits]
            continue
        compound = fields[int(parent)]
        nested = next(
            named.get(option, option) if isinstance(option, str) else option
            for option in compound["type"]
            if option != "null"
        )
        names += [f"{compound['name']}.{nested['fields'][i]['name']}" for i in set_bits]
    return names


def _bits(hex_text: str) -> list[int]:
    assert hex_text.startswith("0x"), hex_text
    # Salesforce's utility reads the hex as a bit string and reverses it: bit i from the end.
    binary = bin(int(hex_text, 16))[2:][::-1]
    return [i for i, bit in enumerate(binary) if bit == "1"]


def _named_records(schema: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if isinstance(schema, dict):
        if schema.get("type") == "record":
            found[schema["name"]] = schema
        for value in schema.values():
            found |= _named_records(value)
    elif isinstance(schema, list):
        for item in schema:
            found |= _named_records(item)
    return found
