"""One Subscribe stream: where it starts, what it may still send, and when it speaks.

The first FetchRequest names the topic and where to start (LATEST, EARLIEST, or CUSTOM after
a replay id); later requests only add to what the client asked for, and a later request
naming another topic ends the stream. Salesforce counts at most 100 requested events per
stream (asking for more counts as 100) and refuses a request for none. Events go out as soon
as they are stored and asked for; with nothing to send, an empty response carrying the
newest replay id goes out every `keepalive_s`; a stream left with nothing requested for
`idle_close_s` is closed by the server.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import grpc

from sftriggerd.salesforce.pubsub import pubsub_api_pb2 as pb
from sftriggerd_emulator.pubsub.codec import EventCodec
from sftriggerd_emulator.pubsub.errors import (
    AUTH_ERROR,
    REPLAY_CORRUPTED,
    REPLAY_MISSING,
    REQUESTED_INVALID,
    SERVICE_UNAVAILABLE,
    TOPIC_MISMATCH,
    PubSubError,
    new_rpc_id,
)
from sftriggerd_emulator.pubsub.faults import PubSubFaults
from sftriggerd_emulator.pubsub.replay import ReplayIdError, decode_replay_id, encode_replay_id
from sftriggerd_emulator.pubsub.topics import Topic
from sftriggerd_emulator.streaming.hub import StreamingHub
from sftriggerd_emulator.streaming.streams import Stream

MAX_REQUESTED = 100
# How often a waiting stream looks at its session and the fault switches.
_TICK_S = 0.25


def _invalid(code: str, message: str) -> PubSubError:
    return PubSubError(grpc.StatusCode.INVALID_ARGUMENT, code, message)


def check_requested(request: pb.FetchRequest) -> int:
    if request.num_requested <= 0:
        raise _invalid(REQUESTED_INVALID, "num_requested must be greater than zero.")
    return request.num_requested


def start_position(stream: Stream, request: pb.FetchRequest) -> int:
    """The position after which the stream starts, from the first request's replay option."""
    preset = request.replay_preset
    if preset == pb.LATEST:
        return stream.last_replay_id
    if preset == pb.EARLIEST:
        return 0
    if preset != pb.CUSTOM:
        raise _invalid(REPLAY_MISSING, f"Unknown replay preset {preset}.")
    if not request.replay_id:
        raise _invalid(REPLAY_MISSING, "A CUSTOM replay preset needs a replay_id.")
    try:
        position = decode_replay_id(stream.name, request.replay_id)
    except ReplayIdError:
        raise _invalid(REPLAY_CORRUPTED, "The replay ID is not valid for this topic.") from None
    # The newest position is always a valid start, even when retention has emptied the
    # stream: it is what keepalives hand out for idle topics.
    oldest = stream.oldest_replay_id
    inside = oldest is not None and oldest <= position <= stream.last_replay_id
    if position != stream.last_replay_id and not inside:
        raise _invalid(
            REPLAY_CORRUPTED,
            "The replay ID is not valid or is outside the retention window.",
        )
    return position


@dataclass
class StreamState:
    """What `/_emulator/pubsub` shows of one open stream."""

    topic: str
    position: int
    pending: int
    generation: int
    opened: float = field(default_factory=time.monotonic)


class Subscription:
    def __init__(
        self,
        hub: StreamingHub,
        codec: EventCodec,
        faults: PubSubFaults,
        topic: Topic,
        state: StreamState,
        session_alive: Callable[[], bool],
        keepalive_s: float,
        idle_close_s: float,
        stats: Counter[str],
    ) -> None:
        self._hub = hub
        self._codec = codec
        self._faults = faults
        self._topic = topic
        self.state = state
        self._session_alive = session_alive
        self._keepalive_s = keepalive_s
        self._idle_close_s = idle_close_s
        self._stats = stats
        self.wake = asyncio.Event()
        self._failure: PubSubError | None = None

    def request(self, request: pb.FetchRequest) -> None:
        """A later FetchRequest: more events asked for (at most 100 outstanding)."""
        if request.topic_name and request.topic_name != self._topic.name:
            self._failure = _invalid(TOPIC_MISMATCH, "The topic name of a stream cannot change.")
        else:
            try:
                more = check_requested(request)
            except PubSubError as error:
                self._failure = error
            else:
                self.state.pending = min(MAX_REQUESTED, self.state.pending + more)
        self.wake.set()

    async def read_requests(self, requests: AsyncIterator[pb.FetchRequest]) -> None:
        async for request in requests:
            self.request(request)

    async def responses(self) -> AsyncIterator[pb.FetchResponse]:
        last_sent = time.monotonic()
        idle_since: float | None = None
        while True:
            self._raise_if_ended()
            now = time.monotonic()
            if not self._faults.silent:
                batch = self._take()
                if batch:
                    self._stats["pubsub_events_delivered"] += len(batch)
                    yield self._response(batch)
                    last_sent = now
                    continue
                if now - last_sent >= self._keepalive_s and not self._faults.keepalives_off:
                    self._stats["pubsub_keepalives"] += 1
                    yield self._response([])
                    last_sent = now
            if self.state.pending > 0:
                idle_since = None
            elif idle_since is None:
                idle_since = now
            elif now - idle_since >= self._idle_close_s:
                return
            await self._sleep(last_sent, idle_since)

    def _raise_if_ended(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self.state.generation != self._faults.drop_generation:
            raise PubSubError(
                grpc.StatusCode.UNAVAILABLE, SERVICE_UNAVAILABLE, "The stream was reset."
            )
        if not self._session_alive():
            raise PubSubError(
                grpc.StatusCode.UNAUTHENTICATED, AUTH_ERROR, "The session is no longer valid."
            )

    async def _sleep(self, last_sent: float, idle_since: float | None) -> None:
        now = time.monotonic()
        timeout = min(_TICK_S, max(0.0, last_sent + self._keepalive_s - now))
        if idle_since is not None:
            timeout = min(timeout, max(0.0, idle_since + self._idle_close_s - now))
        self.wake.clear()
        try:
            await asyncio.wait_for(self.wake.wait(), timeout=max(timeout, 0.001))
        except TimeoutError:
            pass

    def _stream(self) -> Stream:
        return self._hub.stream(self._topic.stream)

    def _take(self) -> list[pb.ConsumerEvent]:
        """Events due to the client (at most what it asked for), moving the position."""
        if self.state.pending <= 0 or self._topic.name in self._hub.starved:
            return []
        stream = self._stream()
        batch: list[pb.ConsumerEvent] = []
        for event in stream.after(self.state.position):
            if len(batch) >= self.state.pending:
                break
            self.state.position = event.replay_id
            if self._topic.view.admits(event):
                batch.append(self._codec.consumer_event(stream, event))
        self.state.pending -= len(batch)
        return batch

    def _response(self, events: list[pb.ConsumerEvent]) -> pb.FetchResponse:
        stream = self._stream()
        if not events and not any(
            self._topic.view.admits(event) for event in stream.after(self.state.position)
        ):
            # Nothing for this topic lies ahead: the newest position is as far as it got.
            self.state.position = max(self.state.position, stream.last_replay_id)
        return pb.FetchResponse(
            events=events,
            latest_replay_id=encode_replay_id(stream.name, self.state.position),
            rpc_id=new_rpc_id(),
            pending_num_requested=self.state.pending,
        )
