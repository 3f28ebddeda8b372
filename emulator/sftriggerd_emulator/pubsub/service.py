"""The `eventbus.v1.PubSub` service: authentication, GetTopic, GetSchema and Subscribe.

Every call carries the session as metadata, as on Salesforce: `accesstoken` (an access token
from the emulator's OAuth endpoint), `instanceurl` (the emulator's base URL) and `tenantid`
(the org id, 15 or 18 characters). A blank one is `service.auth.headers.invalid`; an unknown,
expired or revoked token, or another org's id, is `service.auth.error`; both UNAUTHENTICATED.
An open stream whose session ends is closed the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any, NoReturn

import grpc

from sftriggerd.salesforce.pubsub import pubsub_api_pb2 as pb
from sftriggerd_emulator.context import EmulatorContext
from sftriggerd_emulator.identity import ORG_ID
from sftriggerd_emulator.pubsub.codec import EventCodec
from sftriggerd_emulator.pubsub.errors import (
    AUTH_ERROR,
    AUTH_HEADERS_INVALID,
    CLIENT_LIMIT,
    INTERNAL_ERROR,
    SCHEMA_EMPTY,
    SCHEMA_NOT_FOUND,
    PubSubError,
    abort,
    new_rpc_id,
)
from sftriggerd_emulator.pubsub.faults import PubSubFaults
from sftriggerd_emulator.pubsub.subscribe import (
    MAX_REQUESTED,
    StreamState,
    Subscription,
    check_requested,
    start_position,
)
from sftriggerd_emulator.pubsub.topics import Topic, resolve_topic
from sftriggerd_emulator.streaming.hub import StreamingHub

log = logging.getLogger(__name__)
Context = grpc.aio.ServicerContext[Any, Any]


class PubSubService:
    def __init__(self, ctx: EmulatorContext, hub: StreamingHub, codec: EventCodec) -> None:
        self._ctx = ctx
        self._hub = hub
        self.codec = codec
        self.faults = PubSubFaults()
        self.open: dict[int, Subscription] = {}
        hub.publish_listeners.append(self._wake_all)

    def _wake_all(self) -> None:
        for subscription in self.open.values():
            subscription.wake.set()

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            "eventbus.v1.PubSub",
            {
                "Subscribe": grpc.stream_stream_rpc_method_handler(
                    self.subscribe,
                    request_deserializer=pb.FetchRequest.FromString,
                    response_serializer=pb.FetchResponse.SerializeToString,
                ),
                "GetSchema": grpc.unary_unary_rpc_method_handler(
                    self.get_schema,
                    request_deserializer=pb.SchemaRequest.FromString,
                    response_serializer=pb.SchemaInfo.SerializeToString,
                ),
                "GetTopic": grpc.unary_unary_rpc_method_handler(
                    self.get_topic,
                    request_deserializer=pb.TopicRequest.FromString,
                    response_serializer=pb.TopicInfo.SerializeToString,
                ),
            },
        )

    # -- calls -----------------------------------------------------------------------------

    async def get_topic(self, request: pb.TopicRequest, context: Context) -> pb.TopicInfo:
        await self.faults.held(f"GetTopic {request.topic_name}")
        try:
            self._authenticate(context)
            self._take_fault(f"GetTopic {request.topic_name}")
            topic = resolve_topic(self._hub, request.topic_name)
        except PubSubError as error:
            await self._fail(context, error)
        return pb.TopicInfo(
            topic_name=topic.name,
            tenant_guid=ORG_ID,
            can_publish=topic.kind == "platform_event",
            can_subscribe=True,
            schema_id=self._topic_schema_id(topic),
            rpc_id=new_rpc_id(),
        )

    async def get_schema(self, request: pb.SchemaRequest, context: Context) -> pb.SchemaInfo:
        self._ctx.stats["pubsub_schema_calls"] += 1
        await self.faults.held(f"GetSchema {request.schema_id}")
        try:
            self._authenticate(context)
            self._take_fault(f"GetSchema {request.schema_id}")
            schema = self._schema(request.schema_id)
        except PubSubError as error:
            await self._fail(context, error)
        return pb.SchemaInfo(schema_json=schema, schema_id=request.schema_id, rpc_id=new_rpc_id())

    async def subscribe(
        self, requests: AsyncIterator[pb.FetchRequest], context: Context
    ) -> AsyncIterator[pb.FetchResponse]:
        key = id(context)
        try:
            token = self._authenticate(context)
            first = await anext(aiter(requests), None)
            if first is None:
                return
            self._take_fault(f"Subscribe {first.topic_name}")
            if len(self.open) >= self._ctx.settings.pubsub_max_streams:
                raise PubSubError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    CLIENT_LIMIT,
                    "The maximum number of concurrent clients has been exceeded.",
                )
            topic = resolve_topic(self._hub, first.topic_name)
            pending = min(MAX_REQUESTED, check_requested(first))
            position = start_position(self._hub.stream(topic.stream), first)
            subscription = self._open(topic, position, pending, token)
            self.open[key] = subscription
            self._ctx.stats["pubsub_subscribes"] += 1
            reader = _background(subscription.read_requests(requests))
            try:
                async for response in subscription.responses():
                    yield response
            finally:
                reader.cancel()
        except PubSubError as error:
            await self._fail(context, error)
        except (grpc.aio.AbortError, GeneratorExit):
            raise
        except Exception:
            # A defect of the emulator: the client still gets a clear gRPC error.
            log.exception("Subscribe failed")
            internal = PubSubError(grpc.StatusCode.INTERNAL, INTERNAL_ERROR, "Internal error.")
            await self._fail(context, internal)
        finally:
            self.open.pop(key, None)

    # -- parts -----------------------------------------------------------------------------

    async def _fail(self, context: Context, error: PubSubError) -> NoReturn:
        self._ctx.stats["pubsub_errors"] += 1
        await abort(context, error)

    def _open(self, topic: Topic, position: int, pending: int, token: str) -> Subscription:
        settings = self._ctx.settings
        state = StreamState(topic.name, position, pending, self.faults.drop_generation)
        return Subscription(
            self._hub,
            self.codec,
            self.faults,
            topic,
            state,
            lambda: self._ctx.sessions.user_for_token(token) is not None,
            settings.pubsub_keepalive_s,
            settings.pubsub_idle_close_s,
            self._ctx.stats,
        )

    def _authenticate(self, context: Context) -> str:
        """Checks the session metadata; returns the access token."""
        metadata = {key.lower(): value for key, value in context.invocation_metadata() or ()}
        token, instance, tenant = (
            metadata.get(name) for name in ("accesstoken", "instanceurl", "tenantid")
        )
        if not all(isinstance(value, str) and value.strip() for value in (token, instance, tenant)):
            raise PubSubError(
                grpc.StatusCode.UNAUTHENTICATED,
                AUTH_HEADERS_INVALID,
                "Provide accesstoken, instanceurl and tenantid metadata.",
            )
        assert isinstance(token, str) and isinstance(instance, str) and isinstance(tenant, str)
        known_tenant = tenant in (ORG_ID, ORG_ID[:15])
        known_instance = instance.rstrip("/") == self._ctx.base_url
        if not (known_tenant and known_instance) or not self._ctx.sessions.user_for_token(token):
            raise PubSubError(
                grpc.StatusCode.UNAUTHENTICATED, AUTH_ERROR, "An authentication exception occurred."
            )
        self._ctx.sessions.touch(token)
        return token

    def _take_fault(self, target: str) -> None:
        error = self.faults.take(target)
        if error is not None:
            raise error

    def _topic_schema_id(self, topic: Topic) -> str:
        """The schema the topic's events are written with now; blank for a topic that
        carries several objects' events (each event names its own)."""
        if topic.entity is None:
            return ""
        return self.codec.topic_schema_id(topic.entity, topic.kind)

    def _schema(self, schema_id: str) -> str:
        if not schema_id:
            raise PubSubError(
                grpc.StatusCode.INVALID_ARGUMENT, SCHEMA_EMPTY, "The schema ID is blank."
            )
        schema = self.codec.schema_json(schema_id)
        if schema is None:
            raise PubSubError(
                grpc.StatusCode.NOT_FOUND, SCHEMA_NOT_FOUND, f"No schema {schema_id}."
            )
        return schema


def _background(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """Runs the request reader beside the responses; a client that goes away ends it."""
    task = asyncio.ensure_future(coroutine)
    task.add_done_callback(_retrieve)
    return task


def _retrieve(task: asyncio.Task[None]) -> None:
    # Its failure (the client cancelled) ends the call anyway; retrieving it keeps asyncio
    # from logging "exception was never retrieved".
    if not task.cancelled():
        task.exception()
