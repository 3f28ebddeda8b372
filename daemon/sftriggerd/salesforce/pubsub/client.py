"""The daemon's Pub/Sub API client: one gRPC channel shared by every trigger.

Salesforce serves `eventbus.v1.PubSub` with TLS at api.pubsub.salesforce.com:7443; an
`http://host:port` URL is plaintext (the bundled emulator), to a loopback host only unless
the operator allowed it anywhere (`salesforce.pubsub_allow_plaintext`). Every call carries
the daemon's Salesforce session as metadata (`accesstoken`, `instanceurl`, `tenantid`), read
from the session at call time, so a re-login (one for all triggers) serves the next call at
once.

The channel sends HTTP/2 keepalive pings so a half-open connection under an open stream is
found by the transport too, not only by the adapter's watchdog. Pings no more often than
every 5 minutes: a gRPC server by default refuses more frequent ones (GOAWAY
`too_many_pings`), which would end every stream of the channel.

Schemas are asked for once per id: every trigger meeting a new id waits for the one call
under way for it (a slow answer holds the events of that schema only, never another's), and
a schema that cannot be had is remembered as such for `schema_failure_hold_s` (see
`SchemaFailures`).

The committed stubs have no `_pb2_grpc` module: calls are made by method path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import partial

import grpc
import grpc.aio

from ...config.transport import DEFAULT_PUBSUB_URL, pubsub_endpoint
from ...errors import SftriggerdError
from ..answers import Token
from ..session import SalesforceSession
from . import pubsub_api_pb2 as pb
from .decode import PayloadDecoder, RefusedSchema, SchemaCache, SchemaFailures, UnusableSchema

SUBSCRIBE = "/eventbus.v1.PubSub/Subscribe"
GET_TOPIC = "/eventbus.v1.PubSub/GetTopic"
GET_SCHEMA = "/eventbus.v1.PubSub/GetSchema"
KEEPALIVE_TIME_MS = 300_000
KEEPALIVE_TIMEOUT_MS = 20_000
# GetTopic and GetSchema answer at once; a call that hangs is a failure, not a wait.
UNARY_TIMEOUT_S = 30.0
# How long a schema that cannot be had makes its events unreadable without asking again.
SCHEMA_FAILURE_HOLD_S = 60.0
# A schema is small (a few kB); an object with many fields, not many schemas.
_MAX_MESSAGE_BYTES = 32 * 1024 * 1024

Metadata = tuple[tuple[str, str], ...]
SubscribeCall = grpc.aio.StreamStreamCall[pb.FetchRequest, pb.FetchResponse]


class PubSubSetupError(SftriggerdError):
    """The client cannot make a call: a URL it cannot use, or a session without an org id."""


class UnparsableAnswer(PubSubSetupError):
    """An answer grpc.aio could not parse (it hands back None): a broken server or proxy,
    a failure of the call, never a reason to read the answer's fields."""


def target_of(url: str) -> tuple[str, bool]:
    """`host:port` and whether the channel uses TLS, as config/transport.py reads a
    `salesforce.pubsub_url` (https: TLS; http: plaintext, the emulator or a test double);
    anything else is a setup error."""
    try:
        endpoint = pubsub_endpoint(url)
    except ValueError as exc:
        raise PubSubSetupError(str(exc)) from exc
    return endpoint.target, endpoint.tls


def channel_options(keepalive_time_ms: int = KEEPALIVE_TIME_MS) -> list[tuple[str, int]]:
    return [
        ("grpc.keepalive_time_ms", keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        # Pings only while a stream is open: an idle channel has nothing to lose.
        ("grpc.keepalive_permit_without_calls", 0),
        # A stream that waits minutes for events sends no data: ping it all the same.
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
    ]


class PubSubClient:
    """The shared channel, the session metadata, and the decoders of the schemas seen so far
    by id."""

    def __init__(
        self,
        session: SalesforceSession,
        url: str = DEFAULT_PUBSUB_URL,
        *,
        keepalive_time_ms: int = KEEPALIVE_TIME_MS,
        schema_failure_hold_s: float = SCHEMA_FAILURE_HOLD_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.url = url
        self._target, self._secure = target_of(url)
        self._keepalive_time_ms = keepalive_time_ms
        self._channel: grpc.aio.Channel | None = None
        # Schemas never change under an id (the id is the schema's fingerprint).
        self._decoders = SchemaCache()
        self._schema_failures = SchemaFailures(schema_failure_hold_s, clock=clock)
        # The GetSchema under way for each id: a caller meeting the id meanwhile waits for it.
        self._fetching: dict[str, asyncio.Task[PayloadDecoder]] = {}
        self.schema_fetches = 0

    def channel(self) -> grpc.aio.Channel:
        """The channel, made on first use (inside the running event loop, as grpc.aio wants)."""
        if self._channel is None:
            options = channel_options(self._keepalive_time_ms)
            if self._secure:
                credentials = grpc.ssl_channel_credentials()
                self._channel = grpc.aio.secure_channel(self._target, credentials, options)
            else:
                self._channel = grpc.aio.insecure_channel(self._target, options)
        return self._channel

    async def metadata(self, token: Token | None = None) -> Metadata:
        """`token` (by default the session's; logs in when there is none yet) as metadata."""
        token = token or await self.session.token()
        if not token.org_id:
            raise PubSubSetupError(
                "the login answer named no org id (identity URL `id`); the Pub/Sub API needs it"
            )
        return (
            ("accesstoken", token.access_token),
            ("instanceurl", token.instance_url),
            ("tenantid", token.org_id),
        )

    async def get_topic(self, topic_name: str, token: Token | None = None) -> pb.TopicInfo:
        """Raises grpc.aio.AioRpcError as the server answered, UnparsableAnswer for an
        answer that does not parse."""
        call = self.channel().unary_unary(
            GET_TOPIC,
            request_serializer=pb.TopicRequest.SerializeToString,
            response_deserializer=pb.TopicInfo.FromString,
        )
        request = pb.TopicRequest(topic_name=topic_name)
        answer: pb.TopicInfo | None = await call(
            request, metadata=await self.metadata(token), timeout=UNARY_TIMEOUT_S
        )
        if answer is None:
            raise UnparsableAnswer(f"GetTopic {topic_name}: the answer does not parse")
        return answer

    async def decoder(self, schema_id: str, token: Token | None = None) -> PayloadDecoder:
        """The payload decoder of `schema_id`, whose schema is asked once per id for every
        trigger (callers meeting it together wait for one call). Raises grpc.aio.AioRpcError
        as the server answered, `UnusableSchema` (a MalformedMessage) for a schema the
        decoder cannot follow and `RefusedSchema` for one given up (both remembered for
        `schema_failure_hold_s`), UnparsableAnswer for an answer that does not parse."""
        known = self._decoders.get(schema_id)
        if known is not None:
            return known
        failure = self._schema_failures.recalled(schema_id)
        if failure is not None:
            raise failure
        fetch = self._fetching.get(schema_id)
        if fetch is None:
            fetch = asyncio.create_task(self._fetch_schema(schema_id, token))
            self._fetching[schema_id] = fetch
            fetch.add_done_callback(partial(self._fetched, schema_id))
        # Shielded: a caller cancelled (its source stopping) leaves the call to the others.
        return await asyncio.shield(fetch)

    def give_up_schema(self, schema_id: str, why: str) -> None:
        """Remembers `schema_id` as refused for good, for now: for `schema_failure_hold_s`
        `decoder` raises `RefusedSchema(why)` for it without asking the server."""
        self._schema_failures.remember(schema_id, RefusedSchema(why))

    async def _fetch_schema(self, schema_id: str, token: Token | None) -> PayloadDecoder:
        call = self.channel().unary_unary(
            GET_SCHEMA,
            request_serializer=pb.SchemaRequest.SerializeToString,
            response_deserializer=pb.SchemaInfo.FromString,
        )
        self.schema_fetches += 1
        answer: pb.SchemaInfo | None = await call(
            pb.SchemaRequest(schema_id=schema_id),
            metadata=await self.metadata(token),
            timeout=UNARY_TIMEOUT_S,
        )
        if answer is None:
            raise UnparsableAnswer(f"GetSchema {schema_id}: the answer does not parse")
        try:
            return self._decoders.add(schema_id, answer.schema_json)
        except UnusableSchema as exc:  # the same under this id whenever asked
            self._schema_failures.remember(schema_id, exc)
            raise

    def _fetched(self, schema_id: str, fetch: asyncio.Task[PayloadDecoder]) -> None:
        if self._fetching.get(schema_id) is fetch:
            del self._fetching[schema_id]
        if not fetch.cancelled():
            fetch.exception()  # retrieved: its waiters have it, or none is left to

    async def subscribe(self, token: Token | None = None) -> SubscribeCall:
        """A new Subscribe stream; the caller writes its FetchRequests and reads the answers."""
        method: grpc.aio.StreamStreamMultiCallable[pb.FetchRequest, pb.FetchResponse]
        method = self.channel().stream_stream(
            SUBSCRIBE,
            request_serializer=pb.FetchRequest.SerializeToString,
            response_deserializer=pb.FetchResponse.FromString,
        )
        call: SubscribeCall = method(metadata=await self.metadata(token))
        return call

    async def close(self) -> None:
        fetching, self._fetching = list(self._fetching.values()), {}
        for fetch in fetching:
            fetch.cancel()
        await asyncio.gather(*fetching, return_exceptions=True)
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close(grace=None)
