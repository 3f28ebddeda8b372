"""The Pub/Sub API transport of the streaming source: one Subscribe stream per session.

- Where to start: StartAt.NEW is the LATEST preset, RETAINED is EARLIEST, a stored replay id
  (opaque bytes) is CUSTOM after it. A stored CometD position (an int) is not resumable here:
  the loop resumes by time instead.
- Flow control: at most `batch_size` (at most 100) events are ever asked for and not yet
  delivered. The next batch is asked for only when the previous one is all delivered and the
  loop calls `receive` again, i.e. once the loop has stored it.
- A watchdog: Salesforce answers an idle stream with an empty keepalive within 270 s; a
  `receive` that gets neither events nor a keepalive within `keepalive_s + stall_margin_s`
  raises Stalled (the connection is presumed half-open), and the loop reconnects.
- Keepalives carry the newest position the subscription has passed: `idle_position` hands it
  to the loop, which stores it so an idle channel's position stays inside retention.
- Every failure is read by sources/pubsub_outcomes.py into a neutral outcome.

The server says nothing when it accepts a subscription; it refuses one (an expired replay id)
at once. So `subscribe` waits up to `settle_s` for a refusal before it returns; an answer
that comes in that time is kept for the first `receive`. The stream counts as established
only once its first answer arrives: a refusal of the position that comes later than
`settle_s` (a slow server) still raises ReplayExpired, from `receive`.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any, TypeAlias

import grpc
import grpc.aio

from ..events.streamed import MalformedMessage, Received
from ..salesforce.answers import Token
from ..salesforce.pubsub import pubsub_api_pb2 as pb
from ..salesforce.pubsub.client import PubSubClient, PubSubSetupError, SubscribeCall
from .position import ReplayId
from .pubsub_outcomes import error_code, outcome_of, stream_ended
from .transport import (
    ChannelUnavailable,
    Reauthenticate,
    Stalled,
    Start,
    StartAt,
    StreamTransport,
    TransportFactory,
    TransportFailure,
    TransportOutcome,
)

MAX_BATCH = 100  # Salesforce counts no more than 100 requested events per stream
KEEPALIVE_S = 270.0  # Salesforce's bound on the pause between an idle stream's answers
STALL_MARGIN_S = 30.0
SETTLE_S = 1.0
# A schema refused this many times in a row (a permission set being changed, a schema id
# not yet spread: often passing) makes its event poison; before that the batch is retried.
# Then the client remembers it as given up: its other events are poison at once, without a
# call, until the client's `schema_failure_hold_s` has passed (a burst costs no more calls).
SCHEMA_REFUSALS = 3
# Schema lookups that mean "this event cannot be read", not "the stream failed".
_UNREADABLE_SCHEMA = (
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.INVALID_ARGUMENT,
)

# A response, or grpc.aio.EOF (the stream ended without an error).
Read: TypeAlias = pb.FetchResponse | object


def identity_of(replay_id: bytes) -> str:
    """An event's name within its stream, as text (the body's `source.replay_id`)."""
    return base64.b64encode(replay_id).decode("ascii")


class PubSubTransport:
    def __init__(
        self,
        pubsub: PubSubClient,
        channel: str,
        *,
        batch_size: int = MAX_BATCH,
        keepalive_s: float = KEEPALIVE_S,
        stall_margin_s: float = STALL_MARGIN_S,
        settle_s: float = SETTLE_S,
        schema_refusals: dict[str, int] | None = None,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH}, not {batch_size}")
        self._pubsub = pubsub
        self.channel = channel
        self._batch_size = batch_size
        self._window_s = keepalive_s + stall_margin_s
        self._settle_s = settle_s
        self._call: SubscribeCall | None = None
        self._reading: asyncio.Future[Read] | None = None
        self._from_position = False
        self._established = False  # subscribed: the settle window passed without a refusal
        self._answered = False  # the stream's first answer arrived: the position accepted
        # Asked for and not yet delivered: never more than `batch_size`.
        self.outstanding = 0
        self.requests_sent = 0
        self._idle_position: bytes | None = None
        self._token: Token | None = None
        # Refusals of GetSchema by schema id, in a row: kept across this channel's sessions.
        self._schema_refusals = {} if schema_refusals is None else schema_refusals

    def resumable(self, position: ReplayId) -> bool:
        # A CometD replay id (an int) means nothing to the Pub/Sub API.
        return isinstance(position, bytes) and len(position) > 0

    def idle_position(self) -> bytes | None:
        """The position a keepalive said the subscription has passed, when the last `receive`
        brought no events (None otherwise): every event before it is delivered already."""
        return self._idle_position

    async def open(self) -> None:
        try:
            self._pubsub.channel()
            await self._pubsub.metadata()  # logs in when no one has yet
        except PubSubSetupError as exc:
            raise TransportFailure(str(exc)) from exc

    async def subscribe(self, start: Start) -> None:
        await self._end_call()  # again after a ReplayExpired: a stream of its own
        self._from_position = isinstance(start, bytes)
        self._established = self._answered = False
        # Every call of this stream carries this token; a refusal names it as stale.
        self._token = await self._pubsub.session.token()
        await self._check_topic()
        try:
            call = self._call = await self._pubsub.subscribe(self._token)
        except PubSubSetupError as exc:
            raise TransportFailure(str(exc)) from exc
        self.outstanding = 0
        await self._request(first=_first_request(self.channel, start))
        self._reading = asyncio.ensure_future(call.read())
        await asyncio.wait({self._reading}, timeout=self._settle_s)
        refused = self._reading.exception() if self._reading.done() else None
        if refused is not None:
            raise await self._outcome(refused)
        self._established = True

    async def receive(self) -> list[Received]:
        call = self._session()
        self._idle_position = None
        if self._reading is None:
            if self.outstanding == 0:
                await self._request()
            self._reading = asyncio.ensure_future(call.read())
        reading = self._reading
        done, _ = await asyncio.wait({reading}, timeout=self._window_s)
        if not done:
            raise Stalled(
                f"Pub/Sub Subscribe: neither events nor a keepalive in {self._window_s:g} s"
            )
        self._reading = None
        failure = reading.exception()
        if failure is not None:
            raise await self._outcome(failure)
        response = reading.result()
        if response is grpc.aio.EOF:  # closed without an error: its status follows
            raise await self._ended(call)
        if not isinstance(response, pb.FetchResponse):
            # grpc.aio hands back None for an answer it could not parse: the stream may
            # stay open, so nothing more is read from it.
            await self._end_call()
            raise TransportFailure("Pub/Sub Subscribe: an answer that does not parse")
        self._answered = True  # the server answered: it accepted the position
        self.outstanding = max(0, self.outstanding - len(response.events))
        if not response.events:
            self._idle_position = bytes(response.latest_replay_id) or None
        return [await self._received(event) for event in response.events]

    async def close(self) -> None:
        await self._end_call()

    async def _ended(self, call: SubscribeCall) -> TransportOutcome:
        """The outcome of a stream that ended: its status, awaited only within the window
        (a server that sent EOF but never a status must not hold the loop)."""
        try:
            async with asyncio.timeout(self._window_s):
                status = await asyncio.shield(call.code())
        except TimeoutError:
            await self._end_call()
            return TransportFailure("Pub/Sub Subscribe: the stream ended without a status")
        return stream_ended(status, await call.details())

    # -- parts -----------------------------------------------------------------------------

    async def _check_topic(self) -> None:
        try:
            topic = await self._pubsub.get_topic(self.channel, self._token)
        except grpc.aio.AioRpcError as exc:
            raise await self._outcome(exc, call="GetTopic") from exc
        except PubSubSetupError as exc:  # an unusable endpoint, an answer that does not parse
            raise TransportFailure(str(exc)) from exc
        if not topic.can_subscribe:
            raise ChannelUnavailable(f"Pub/Sub topic {self.channel} cannot be subscribed")

    async def _request(self, first: pb.FetchRequest | None = None) -> None:
        """Asks for the next batch (after `first`'s options, on a new stream)."""
        call = self._session()
        request = first or pb.FetchRequest()
        request.num_requested = self._batch_size  # only when nothing is outstanding
        try:
            await call.write(request)
        except grpc.aio.AioRpcError as exc:
            raise await self._outcome(exc) from exc
        except asyncio.InvalidStateError as exc:  # the stream ended before the write
            raise await self._outcome(exc) from exc
        self.requests_sent += 1
        self.outstanding += request.num_requested

    async def _received(self, event: pb.ConsumerEvent) -> Received:
        replay_id = bytes(event.replay_id)
        schema_id = event.event.schema_id
        # What the CometD side calls `data.event`: the replay id (here base64), and a
        # platform event's EventUuid (Pub/Sub's event id; the normaliser reads it here).
        header = {"replayId": identity_of(replay_id)}
        if self.channel.startswith("/event/"):
            header["EventUuid"] = event.event.id
        try:
            decoder = await self._pubsub.decoder(schema_id, self._token)
            payload: dict[str, Any] | None = decoder.decode(bytes(event.event.payload))
            unreadable = None
        except grpc.aio.AioRpcError as exc:
            await self._schema_refused(schema_id, exc)
            payload, unreadable = None, _cannot_be_had(schema_id, exc)
        except MalformedMessage as exc:  # the payload or schema cannot be read
            payload, unreadable = None, str(exc)
        except PubSubSetupError as exc:  # a GetSchema answer that does not parse
            raise TransportFailure(str(exc)) from exc
        else:
            self._schema_refusals.pop(schema_id, None)
        # `raw` in the CometD message's shape, so a body's `raw` reads the same over both
        # transports (but for the schema id and the replay id, which differ by nature).
        data: dict[str, Any] = {"schema": schema_id, "payload": payload, "event": header}
        if unreadable is not None:
            data["payload_base64"] = _b64(event)
        raw = {"channel": self.channel, "data": data}
        return Received(
            channel=self.channel,
            payload=payload,
            header=header,
            position=replay_id or None,
            identity=identity_of(replay_id) if replay_id else None,
            raw=raw,
            content={"schemaId": schema_id, "payload": payload} if unreadable is None else raw,
            payload_path=("data", "payload"),
            unreadable=unreadable,
            transport="pubsub",
        )

    async def _schema_refused(self, schema_id: str, exc: grpc.aio.AioRpcError) -> None:
        """Returns when the refusal makes the event poison; raises the outcome to act on
        otherwise. The error-code is read first (an auth code means log in again, whatever
        the status), and a refusal is retried (the loop backs off and resubscribes after the
        last stored position) `SCHEMA_REFUSALS` times before the event is given up."""
        outcome = await self._outcome(exc, call="GetSchema")
        if exc.code() not in _UNREADABLE_SCHEMA or type(outcome) is not TransportFailure:
            raise outcome from exc
        refusals = self._schema_refusals.get(schema_id, 0) + 1
        if refusals < SCHEMA_REFUSALS:
            self._schema_refusals[schema_id] = refusals
            raise outcome from exc
        # Given up: its events are poison without a call for a while (every trigger's, as
        # the client is shared); after that a later event of it gets its chances again.
        self._schema_refusals.pop(schema_id, None)
        self._pubsub.give_up_schema(schema_id, _cannot_be_had(schema_id, exc))

    async def _outcome(self, exc: BaseException, call: str = "Subscribe") -> TransportOutcome:
        if isinstance(exc, grpc.aio.AioRpcError):
            status, details = exc.code(), exc.details() or ""
            code = error_code(exc.trailing_metadata())
        elif self._call is not None and self._call.done():
            status, details = await self._call.code(), await self._call.details() or ""
            code = error_code(await self._call.trailing_metadata())
        else:
            return TransportFailure(f"Pub/Sub {call} failed: {type(exc).__name__}: {exc}")
        if status is grpc.StatusCode.OK:  # a write after the server closed the stream
            return stream_ended(status, details)
        outcome = outcome_of(
            call,
            status,
            code,
            details,
            from_position=self._from_position,
            established=self._established,
            answered=self._answered,
        )
        if isinstance(outcome, Reauthenticate):
            outcome.stale = self._token
        return outcome

    async def _end_call(self) -> None:
        reading, call = self._reading, self._call
        self._reading = self._call = None
        self._idle_position = None
        # Cancelled before anything is awaited: a cancellation of this task in the await
        # below must not leave the server's stream open.
        if call is not None and not call.done():
            call.cancel()  # frees the server's stream at once
        if reading is not None and not reading.done():
            reading.cancel()
        if reading is not None:
            await asyncio.gather(reading, return_exceptions=True)  # retrieved, never logged

    def _session(self) -> SubscribeCall:
        if self._call is None:
            raise TransportFailure("the Pub/Sub stream is not open")
        return self._call


def _first_request(channel: str, start: Start) -> pb.FetchRequest:
    """The first request names the topic and where to start; later ones only ask for more."""
    if start is StartAt.NEW:
        return pb.FetchRequest(topic_name=channel, replay_preset=pb.LATEST)
    if start is StartAt.RETAINED:
        return pb.FetchRequest(topic_name=channel, replay_preset=pb.EARLIEST)
    assert isinstance(start, bytes), "the loop passes only positions this transport resumes"
    return pb.FetchRequest(topic_name=channel, replay_preset=pb.CUSTOM, replay_id=start)


def _cannot_be_had(schema_id: str, exc: grpc.aio.AioRpcError) -> str:
    return f"schema {schema_id!r} cannot be had: {exc.details()}"


def _b64(event: pb.ConsumerEvent) -> str:
    return base64.b64encode(bytes(event.event.payload)).decode("ascii")


def pubsub_transports(pubsub: PubSubClient, **options: Any) -> TransportFactory:
    """A factory for StreamingSource(transport=...): every trigger's sessions over the one
    shared client (its channel, session and schema cache), and each channel's count of
    schema refusals kept across its sessions."""
    refusals: dict[str, dict[str, int]] = {}

    def make(channel: str) -> StreamTransport:
        kept = refusals.setdefault(channel, {})
        return PubSubTransport(pubsub, channel, schema_refusals=kept, **options)

    return make
