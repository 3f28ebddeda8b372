"""The streaming source: one subscription per trigger over a streaming transport, resumed
from the committed position after every restart, reconnect and re-login.

The loop here is transport-neutral: it speaks the protocol of sources/transport.py, and a
transport adapter (CometD: sources/cometd_transport.py; Pub/Sub: sources/pubsub_transport.py;
chosen by the trigger's resolved `transport`) owns the wire and every way its server says
what went wrong. Every batch the transport delivers is one `ingest` with the
position of its last event, so the checkpoint never runs ahead of the data. Each outcome has
a log line and a metric: Reconnect (open a new session, backing off when it repeats),
Reauthenticate (log in again), TransportFailure and Stalled (back off, reconnect),
ReplayExpired (back-fill by polling, then resume), ChannelUnavailable (fail; `mode: auto`
polls instead). Handling a batch (normalise, filter, enrich, CDC gap notices, poison) is
sources/stream_handling.py.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from ..config.settings import TriggerSettings
from ..errors import SftriggerdError
from ..logs import get_logger
from ..salesforce.answers import Token
from ..salesforce.cometd import STALL_MARGIN_S
from ..urls import strip_userinfo
from .backfill import Backfill
from .cometd_hub import CometdHub
from .cometd_transport import CometdTransport
from .context import SourceContext
from .position import StreamResume
from .pubsub_transport import pubsub_transports
from .status import TriggerStatus
from .stream_filter import StreamFilter
from .stream_handling import StreamHandling
from .stream_pacing import Pacer, wait
from .stream_positions import StreamPositions
from .transport import (
    ChannelUnavailable,
    IdlePositions,
    Reauthenticate,
    Reconnect,
    ReplayExpired,
    Start,
    StartAt,
    StreamTransport,
    TransportFactory,
    TransportFailure,
)

log = get_logger(__name__)


class StreamingSource(StreamHandling):
    def __init__(
        self,
        trigger: TriggerSettings,
        context: SourceContext,
        status: TriggerStatus,
        *,
        backoff_cap_s: float = 60.0,
        stall_margin_s: float = STALL_MARGIN_S,
        transport: TransportFactory | None = None,
    ) -> None:
        channel = trigger.resolved_channel
        assert channel is not None, "a streamed trigger has a channel"
        self.trigger = trigger
        self.channel = channel
        self.name = f"streaming:{trigger.name}"
        self._client = context.client
        self._ingest = context.ingest
        self._store = context.store
        self._metrics = context.metrics
        self.status = status
        self._clock = context.clock
        self._pacer = Pacer(backoff_cap_s)

        hub = context.cometd or CometdHub(context.client, stall_margin_s=stall_margin_s)

        def cometd(channel: str) -> StreamTransport:
            return CometdTransport(context.client, channel, hub=hub)

        if transport is None and trigger.resolved_transport == "pubsub":
            assert context.pubsub is not None, "the daemon makes a Pub/Sub client for it"
            transport = pubsub_transports(context.pubsub)
        self._new_transport: TransportFactory = transport or cometd
        # Set by `mode: auto`: an unavailable channel ends `run` so polling can take over.
        self.fall_back = False
        self._last_event_at = self._clock()
        # Without a stored position, events older than this are not ours (start_from).
        self._not_before = trigger.start_from if isinstance(trigger.start_from, datetime) else None
        self.backfill = Backfill(trigger, context) if trigger.object else None
        self.positions = StreamPositions(trigger, channel, context)
        self._filter = StreamFilter(trigger, context.client, self._count_fault)

    def not_ready_reasons(self) -> list[str]:
        if not self.status.connected:
            return [f"{self.trigger.name}: subscription to {self.channel} not acknowledged"]
        return []

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await self._session(stopping)
            except Reconnect as exc:
                self._fault("stream_rehandshake", exc, level="info")
                await self._pause(stopping, "stream_rehandshake_backoff")
            except Reauthenticate as exc:
                self._fault("stream_relogin", exc)
                await self._relogin(stopping, exc.stale)
            except ChannelUnavailable as exc:
                if self.fall_back:
                    raise
                self._fault("stream_channel_unavailable", exc, level="error", failed=True)
                await self._back_off(stopping)
            except (TransportFailure, SftriggerdError) as exc:
                self._fault("stream_error", exc)
                await self._back_off(stopping)
            finally:
                self._set_connected(False)

    async def _session(self, stopping: asyncio.Event) -> None:
        transport = self._new_transport(self.channel)
        try:
            await transport.open()
            start = await self._subscribe(transport)
            await self._listen(transport, start, stopping)
        finally:
            await transport.close()

    async def _subscribe(self, transport: StreamTransport) -> Start:
        """Subscribes from the stored position; returns where the stream started."""
        resume = await self.positions.resume(transport.resumable)
        fill_from = resume.fill_from if resume is not None and self.backfill else None
        start = StartAt.NEW if fill_from is not None else self._start_from(resume)
        subscribed_at = self._clock()
        try:
            await transport.subscribe(start)
        except ReplayExpired as exc:
            await self._resume_after_expiry(transport, start, exc)
        if fill_from is not None:
            await self._resume_from_time(fill_from)
        elif resume is None and start is StartAt.NEW:
            await self.positions.save_start(subscribed_at - timedelta(seconds=1))
        self._set_connected(True)
        log.info(
            "stream_subscribed",
            trigger=self.trigger.name,
            channel=self.channel,
            replay_id=_logged(start),
        )
        return start

    async def _resume_after_expiry(
        self, transport: StreamTransport, start: Start, exc: ReplayExpired
    ) -> None:
        """The stored position left retention: never jump to "new" silently."""
        self._count_fault("replay_expired")
        if self.backfill is None:
            message = (
                f"replay id {_logged(start)} expired on {self.channel}; platform events cannot"
                " be back-filled, events published meanwhile may be lost"
            )
            log.error(
                "stream_gap_unrecoverable", trigger=self.trigger.name, replay_id=_logged(start)
            )
            self.status.fault(message)
            await transport.subscribe(StartAt.RETAINED)
            return
        # Subscribe first, so nothing after this moment is missed, then poll the gap.
        await transport.subscribe(StartAt.NEW)
        since = await self.positions.expired_fill_from()  # the time reached, never "now"
        filled = await self.positions.fill(self.backfill, since, save=True)
        log.warning(
            "stream_gap_filled",
            trigger=self.trigger.name,
            replay_id=_logged(start),
            since=since.isoformat(),
            events=filled,
            error=str(exc),
        )

    async def _resume_from_time(self, since: datetime) -> None:
        """No usable position (the poller ran last, or a fill saved the time it reached):
        subscribed for new events, now back-fill from that time."""
        assert self.backfill is not None
        filled = await self.positions.fill(self.backfill, since, save=True)
        log.info("stream_resumed_from_time", trigger=self.trigger.name, events=filled)

    async def _listen(
        self, transport: StreamTransport, start: Start, stopping: asyncio.Event
    ) -> None:
        while not stopping.is_set():
            receiving = asyncio.ensure_future(transport.receive())
            stop = asyncio.ensure_future(stopping.wait())
            done, _ = await asyncio.wait({receiving, stop}, return_when=asyncio.FIRST_COMPLETED)
            if receiving not in done:
                receiving.cancel()
                return
            stop.cancel()
            try:
                items = receiving.result()
            except ReplayExpired as exc:
                # A refusal of the position that came after `subscribe` returned (a slow
                # server): the same back-fill as a refusal in `subscribe`, never a retry
                # after the same refused position.
                await self._resume_after_expiry(transport, start, exc)
                continue
            self._pacer.healthy()  # the server answered on a subscribed stream
            self.status.advanced(None, self._clock())  # an answer: nothing pending
            if items:
                await self._handle(items)
            elif isinstance(transport, IdlePositions):
                await self._keep_idle_position(transport)
            await self._verify_if_silent()

    async def _keep_idle_position(self, transport: IdlePositions) -> None:
        position = transport.idle_position()
        if position is not None and await self.positions.keep_idle(position):
            log.debug("stream_idle_position_kept", trigger=self.trigger.name)

    def _start_from(self, resume: StreamResume | None) -> Start:
        if resume is not None and resume.replay_id is not None:
            return resume.replay_id
        if resume is not None and resume.fill_from is not None:
            # Nothing to back-fill from (platform events): replay what is retained and drop
            # what is older than the time the stream had reached (by Salesforce's stamps).
            self._not_before = resume.fill_from
            return StartAt.RETAINED
        if self.trigger.start_from == "latest":
            # From now on; the start is saved as the time reached, so a restart or re-subscribe
            # before the first event resumes from it.
            return StartAt.NEW
        return StartAt.RETAINED

    async def _relogin(self, stopping: asyncio.Event, stale: Token | None) -> None:
        """A refused login (AuthenticationError) and an unreachable or failing token endpoint
        (SalesforceUnavailable, 5xx) are both retried by the next round, after a back-off.
        With the refused token known, a login another trigger made since serves this one."""
        await self._pause(stopping, "stream_relogin_backoff")
        try:
            await self._client.session.relogin(stale or await self._client.session.token())
        except SftriggerdError as exc:  # refused, or the token endpoint failed: back off
            self._fault("stream_login_failed", exc, level="error", failed=True)

    async def _pause(self, stopping: asyncio.Event, event: str) -> None:
        delay_s = self._pacer.pause_s()
        if delay_s > 0:
            log.warning(event, trigger=self.trigger.name, delay_s=round(delay_s, 2))
            await wait(stopping, delay_s)

    async def _back_off(self, stopping: asyncio.Event) -> None:
        await wait(stopping, self._pacer.back_off_s())

    def _set_connected(self, connected: bool) -> None:
        if connected:
            self.status.subscribed(self._clock())
        else:
            self.status.disconnected()
        self._metrics.stream_connected.labels(trigger=self.trigger.name).set(int(connected))

    def _fault(
        self, event: str, exc: Exception, level: str = "warning", failed: bool = False
    ) -> None:
        self._count_fault(event.removeprefix("stream_"))
        error = strip_userinfo(str(exc))
        self.status.fault(error, failed=failed)
        getattr(log, level)(event, trigger=self.trigger.name, channel=self.channel, error=error)


def _logged(start: Start) -> int | str:
    """A start as the logs show it: CometD's replay numbers for presets, as before."""
    if start is StartAt.NEW:
        return -1
    if start is StartAt.RETAINED:
        return -2
    return start.hex() if isinstance(start, bytes) else start
