"""How the Pub/Sub side fails a call: a gRPC status, a message, and Salesforce's own code.

Salesforce puts its error code in the trailing metadata under `error-code` (the status alone
does not say what to do: UNAVAILABLE means "retry" for one code and "log in again" for
another) and appends `rpcId: <id>` to the message, also sent as the `rpc-id` trailer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc

PREFIX = "sfdc.platform.eventbus.grpc."
SERVICE_UNAVAILABLE = PREFIX + "service.unavailable"
AUTH_ERROR = PREFIX + "service.auth.error"
AUTH_HEADERS_INVALID = PREFIX + "service.auth.headers.invalid"
CLIENT_LIMIT = PREFIX + "concurrent.client.limit.exceeded"
TOPIC_NOT_FOUND = PREFIX + "topic.not.found"
TOPIC_EMPTY = PREFIX + "topic.validation.empty"
SCHEMA_EMPTY = PREFIX + "schema.validation.failed"
SCHEMA_NOT_FOUND = PREFIX + "schema.meta.permission"
REPLAY_CORRUPTED = PREFIX + "subscription.fetch.replayid.corrupted"
REPLAY_MISSING = PREFIX + "subscription.fetch.replayid.validation.failed"
REQUESTED_INVALID = PREFIX + "subscription.fetch.requested.events.invalid"
TOPIC_MISMATCH = PREFIX + "subscription.fetch.topic.mismatch"
INTERNAL_ERROR = PREFIX + "subscription.internal.error"

ERROR_CODE_KEY = "error-code"
RPC_ID_KEY = "rpc-id"


def new_rpc_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class PubSubError(Exception):
    """Ends the call with `status`, `message` and the `error-code` trailer `code`."""

    status: grpc.StatusCode
    code: str
    message: str

    def details(self, rpc_id: str) -> str:
        return f"{self.message} rpcId: {rpc_id}"

    def trailers(self, rpc_id: str) -> tuple[tuple[str, str], ...]:
        return ((ERROR_CODE_KEY, self.code), (RPC_ID_KEY, rpc_id))


async def abort(context: grpc.aio.ServicerContext[Any, Any], error: PubSubError) -> NoReturn:
    """Ends the call with `error`; grpc raises out of `abort`, so this never returns."""
    rpc_id = new_rpc_id()
    await context.abort(error.status, error.details(rpc_id), error.trailers(rpc_id))
