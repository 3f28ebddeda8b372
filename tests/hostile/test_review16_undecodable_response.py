"""Hostile review of the Pub/Sub transport (issue 16): a Subscribe answer that does not parse
as a FetchResponse (here `rpc_id` with bad UTF-8; a broken proxy or server) is logged by
grpc.aio and read as None. `receive` takes anything not a FetchResponse for EOF and awaits
`call.code()`, outside the watchdog's window: the server keeps the stream open (events are
still requested), so the status never comes, and the trigger waits for good. Neither
Stalled nor any outcome is raised; only a stop or restart of the daemon ends it.

The Pub/Sub server here is a real grpc.aio server on loopback that answers GetTopic as
Salesforce does and sends the one bad answer on Subscribe, then keeps the stream open; the
session logs in to the real emulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import grpc.aio
import pytest

from sftriggerd.metrics import Metrics
from sftriggerd.salesforce.pubsub import pubsub_api_pb2 as pb
from sftriggerd.salesforce.pubsub.client import PubSubClient
from sftriggerd.sources.pubsub_transport import PubSubTransport
from sftriggerd.sources.transport import StartAt, TransportOutcome
from tests.integration.polling_rig import wire
from tests.support.emulator import RunningEmulator

CHANNEL = "/data/AccountChangeEvent"
KEEPALIVE_S, STALL_MARGIN_S = 0.3, 0.3
# Field 3 (rpc_id, a string) holding bytes that are not UTF-8.
NOT_A_FETCH_RESPONSE = b"\x1a\x02\xff\xfe"


async def _get_topic(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    answer: bytes = pb.TopicInfo(topic_name=CHANNEL, can_subscribe=True).SerializeToString()
    return answer


async def _subscribe(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
) -> AsyncIterator[bytes]:
    async for _ in requests:
        yield NOT_A_FETCH_RESPONSE
        await asyncio.sleep(3600)  # requested events outstanding: the stream stays open


@pytest.fixture
async def hostile_pubsub() -> AsyncIterator[str]:
    server = grpc.aio.server()
    handlers: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {
        "GetTopic": grpc.unary_unary_rpc_method_handler(_get_topic),
        "Subscribe": grpc.stream_stream_rpc_method_handler(_subscribe),
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("eventbus.v1.PubSub", handlers),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"http://127.0.0.1:{port}"
    await server.stop(grace=None)


async def test_an_unparsable_answer_ends_receive_within_the_watchdog_window(
    hostile_pubsub: str, emulator: RunningEmulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    store, client, _ = await wire(emulator.url, http, tmp_path, Metrics(), None)
    pubsub = PubSubClient(client.session, hostile_pubsub)
    subject = PubSubTransport(
        pubsub, CHANNEL, keepalive_s=KEEPALIVE_S, stall_margin_s=STALL_MARGIN_S, settle_s=0.2
    )
    try:
        await subject.open()
        await subject.subscribe(StartAt.RETAINED)
        with pytest.raises(TransportOutcome):  # Stalled, Reconnect, a failure: any will do
            async with asyncio.timeout(10 * (KEEPALIVE_S + STALL_MARGIN_S)):
                while True:
                    await subject.receive()
    finally:
        await subject.close()
        await pubsub.close()
        await store.close()
