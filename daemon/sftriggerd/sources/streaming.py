"""The streaming source: one CometD subscription per trigger, resumed from the committed
replay id after every restart, disconnect, re-handshake and re-login.

Every batch of events from a long-poll is one `ingest` with the replay id of its last event,
so the checkpoint never runs ahead of the data. Faults each have a log line and a metric:
`403::Unknown client` (disconnect, handshake and subscribe again, backing off when it repeats),
401 (log in again), transport errors and stalls (back off, reconnect), a replay id past
retention (back-fill by polling, then resume), and CDC gap notices (re-read the records, or
poll the object's time range). A message that cannot be read is kept as poison.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from ..config.settings import TriggerSettings
from ..errors import SalesforceError, SftriggerdError
from ..events.model import Event
from ..events.normalise import (
    Gap,
    MalformedMessage,
    cdc_header,
    from_cdc,
    from_generic,
    from_platform_event,
    from_pushtopic,
)
from ..logs import get_logger
from ..salesforce.answers import SalesforceApiError
from ..salesforce.cometd import (
    STALL_MARGIN_S,
    AuthInvalidError,
    BayeuxClient,
    BayeuxError,
    TransportError,
    UnknownClientError,
)
from ..salesforce.soql import SoqlValueError
from ..store.records import PoisonEvent
from ..urls import strip_userinfo
from .backfill import Backfill
from .context import SourceContext
from .position import RESUME_OVERLAP, StreamResume
from .status import TriggerStatus
from .stream_filter import StreamFilter
from .stream_pacing import Pacer, wait
from .stream_positions import StreamPositions
from .stream_reader import message_replay_id, poison_event

log = get_logger(__name__)

_REPLAY_NEW, _REPLAY_ALL = -1, -2
_INVALID_REPLAY = "The replayId"
_CHANNEL_MISSING = "does not exist"
# A disconnect is a courtesy to the server (it frees a client slot at once instead of after
# its expiry); it must not hold up the next handshake for long.
_DISCONNECT_TIMEOUT_S = 2.0


class ChannelUnavailableError(SftriggerdError):
    """The channel cannot be subscribed (CDC not enabled for the object, no permission)."""


class StreamingSource:
    def __init__(
        self,
        trigger: TriggerSettings,
        context: SourceContext,
        status: TriggerStatus,
        *,
        backoff_cap_s: float = 60.0,
        stall_margin_s: float = STALL_MARGIN_S,
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
        self._stall_margin_s = stall_margin_s
        self._clock = context.clock
        self._pacer = Pacer(backoff_cap_s)
        # Set by `mode: auto`: an unavailable channel ends `run` so polling can take over.
        self.fall_back = False
        self._last_event_at = self._clock()
        # Without a stored replay id, events older than this are not ours (start_from).
        self._not_before: datetime | None = (
            trigger.start_from if isinstance(trigger.start_from, datetime) else None
        )
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
            except UnknownClientError as exc:
                self._fault("stream_rehandshake", exc, level="info")
                await self._pause(stopping, "stream_rehandshake_backoff")
            except AuthInvalidError as exc:
                self._fault("stream_relogin", exc)
                await self._relogin(stopping)
            except ChannelUnavailableError as exc:
                if self.fall_back:
                    raise
                self.status.state = "failed"
                self._fault("stream_channel_unavailable", exc, level="error")
                await self._back_off(stopping)
            except (TransportError, BayeuxError, SftriggerdError) as exc:
                self._fault("stream_error", exc)
                await self._back_off(stopping)
            finally:
                self._set_connected(False)

    async def _session(self, stopping: asyncio.Event) -> None:
        jar = aiohttp.CookieJar(unsafe=True)  # the routing cookie may come from an IP host
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            bayeux = await self._open(http)
            try:
                await self._subscribe(bayeux)
                await self._listen(bayeux, stopping)
            finally:
                # Also before every re-handshake: a client left behind keeps counting toward
                # the org's concurrent-client limit until the server expires it.
                await self._disconnect(bayeux)

    async def _open(self, http: aiohttp.ClientSession) -> BayeuxClient:
        token = await self._client.session.token()
        version = self._client.api_version

        async def authorization() -> str:
            return f"Bearer {(await self._client.session.token()).access_token}"

        bayeux = BayeuxClient(
            http,
            f"{token.instance_url}/cometd/{version}",
            authorization,
            proxy=self._client.proxy,
            stall_margin_s=self._stall_margin_s,
        )
        await bayeux.handshake()
        try:
            await bayeux.connect()  # the first connect answers at once, with the advice
        except BaseException:
            await self._disconnect(bayeux)
            raise
        return bayeux

    async def _subscribe(self, bayeux: BayeuxClient) -> None:
        resume = await self.positions.resume()
        fill_from = resume.fill_from if resume is not None and self.backfill else None
        replay = _REPLAY_NEW if fill_from is not None else self._replay_from(resume)
        subscribed_at = self._clock()
        try:
            await bayeux.subscribe(self.channel, {"replay": {self.channel: replay}})
        except (UnknownClientError, AuthInvalidError):
            raise  # the client or the session ended, not the channel: handshake, log in
        except BayeuxError as exc:
            if _CHANNEL_MISSING in exc.error or exc.code == "403":
                raise ChannelUnavailableError(exc.error) from exc
            if _INVALID_REPLAY not in exc.error or replay < 0:
                raise
            await self._resume_after_expiry(bayeux, replay, exc)
        if self.channel not in bayeux.subscriptions:
            raise BayeuxError("/meta/subscribe", f"{self.channel} is not subscribed")
        if fill_from is not None:
            await self._resume_from_time(fill_from)
        elif resume is None and replay == _REPLAY_NEW:
            await self.positions.save_start(subscribed_at - timedelta(seconds=1))
        self._set_connected(True)
        log.info(
            "stream_subscribed", trigger=self.trigger.name, channel=self.channel, replay_id=replay
        )

    async def _resume_after_expiry(
        self, bayeux: BayeuxClient, replay: int, exc: BayeuxError
    ) -> None:
        """The stored replay id left retention: never jump to "latest" silently."""
        self._count_fault("replay_expired")
        if self.backfill is None:
            message = (
                f"replay id {replay} expired on {self.channel}; platform events cannot be"
                " back-filled, events published meanwhile may be lost"
            )
            log.error("stream_gap_unrecoverable", trigger=self.trigger.name, replay_id=replay)
            self.status.last_error = message
            await bayeux.subscribe(self.channel, {"replay": {self.channel: _REPLAY_ALL}})
            return
        # Subscribe first, so nothing after this moment is missed, then poll the gap.
        await bayeux.subscribe(self.channel, {"replay": {self.channel: _REPLAY_NEW}})
        since = await self.positions.expired_fill_from()  # the time reached, never "now"
        filled = await self.positions.fill(self.backfill, since, save=True)
        log.warning(
            "stream_gap_filled",
            trigger=self.trigger.name,
            replay_id=replay,
            since=since.isoformat(),
            events=filled,
            error=exc.error,
        )

    async def _resume_from_time(self, since: datetime) -> None:
        """No usable replay id (the poller ran last, or a fill saved the time it reached):
        subscribed for new events, now back-fill from that time."""
        assert self.backfill is not None
        filled = await self.positions.fill(self.backfill, since, save=True)
        log.info("stream_resumed_from_time", trigger=self.trigger.name, events=filled)

    async def _listen(self, bayeux: BayeuxClient, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            poll = asyncio.ensure_future(bayeux.connect())
            stop = asyncio.ensure_future(stopping.wait())
            done, _ = await asyncio.wait({poll, stop}, return_when=asyncio.FIRST_COMPLETED)
            if poll not in done:
                poll.cancel()
                return
            stop.cancel()
            result = poll.result()
            self._pacer.healthy()  # a long-poll answered on a subscribed client
            self.status.caught_up_to = self._clock()  # an answered long-poll: nothing pending
            if result.events:
                await self._handle(result.events)
            await self._verify_if_silent()
            interval_s = bayeux.advice.interval_ms / 1000  # milliseconds, not seconds
            if bayeux.advice.reconnect == "none":
                raise AuthInvalidError("/meta/connect", "server advised reconnect: none")
            if interval_s > 0:
                await wait(stopping, interval_s)

    async def _handle(self, messages: list[dict[str, Any]]) -> None:
        """One ingest for the batch, at the position of its last message with a replay id
        (none: the events are stored and the position stays). A message that cannot be
        normalised is kept as poison in the same transaction, so the stream moves past it."""
        events: list[Event] = []
        poison: list[PoisonEvent] = []
        last_replay: int | None = None
        ours = [m for m in messages if m.get("channel") == self.channel]
        for message in ours:
            replay = message_replay_id(message)
            try:
                events.extend(await self._normalise(message))
            except (MalformedMessage, SoqlValueError) as exc:
                # SoqlValueError: a name in the message (object, record id) that cannot go
                # into a query or path; replaying the message would meet it again forever.
                poison.append(self._poison(message, exc, replay))
            except SalesforceApiError as exc:
                if exc.status != 400:
                    raise  # limits, permissions that may change: the batch is tried again
                # A permanent refusal of what the message asks to read (INVALID_TYPE for an
                # object the user cannot query): the same on every replay.
                poison.append(self._poison(message, exc, replay))
            last_replay = replay if replay is not None else last_replay
        if not ours:
            return
        if self._not_before is not None:
            events = [e for e in events if e.occurred_at >= self._not_before]
        newest = max((e.occurred_at for e in events), default=None)
        # No replay id in the whole batch: its events are stored, the position stays.
        checkpoint = None if last_replay is None else self.positions.checkpoint(last_replay, newest)
        if events or poison or checkpoint is not None:
            await self._ingest(self.trigger.name, events, checkpoint, poison)
        self._last_event_at = self._clock()
        if last_replay is not None:
            self.status.checkpoint = f"replay_id {last_replay}"
        self.status.caught_up_to = self._clock()

    def _poison(self, message: dict[str, Any], exc: Exception, replay: int | None) -> PoisonEvent:
        kept = poison_event(self.trigger.name, message, str(exc))
        self._count_fault("poison")
        log.error(
            "stream_message_poison", trigger=self.trigger.name, error=kept.reason, replay_id=replay
        )
        return kept

    async def _normalise(self, message: dict[str, Any]) -> list[Event]:
        kind = self.trigger.channel_kind
        name = self.trigger.name
        if kind == "platform_event":
            return await self._filter.keep([from_platform_event(name, self.channel, message)])
        if kind == "generic":
            return [from_generic(name, self.channel, message)]
        if kind == "pushtopic":
            assert self.trigger.object is not None
            event = from_pushtopic(name, self.trigger.object, self.channel, message)
            return await self._filter.keep([event] if event.change in self.trigger.events else [])
        result = from_cdc(name, self.channel, message)
        if isinstance(result, Gap):
            return await self._fill_gap(result)
        if self._ignored(message):
            return []
        wanted = [e for e in result if e.change in self.trigger.events]
        # Filtered before `enrich`, which would otherwise read records the filter drops.
        wanted = await self._filter.keep(wanted)
        return await self._enrich(wanted) if self.trigger.enrich else wanted

    def _ignored(self, message: dict[str, Any]) -> bool:
        header = cdc_header(message)
        origin = str(header.get("changeOrigin", ""))
        return str(header.get("commitUser", "")) in self.trigger.ignore_users or any(
            marker in origin for marker in self.trigger.ignore_origins
        )

    async def _enrich(self, events: list[Event]) -> list[Event]:
        enriched = []
        for event in events:
            if event.change == "updated" and event.object and event.record_id:
                fields = list(self.trigger.fields) or None
                record = await self._client.get_record(event.object, event.record_id, fields)
                if record is not None:
                    merged = {k: v for k, v in record.items() if k != "attributes"}
                    event = Event(**{**event.__dict__, "record": merged})
            enriched.append(event)
        return enriched

    async def _fill_gap(self, gap: Gap) -> list[Event]:
        self._count_fault("gap_overflow" if gap.overflow else "gap")
        log.warning(
            "stream_gap_notice",
            trigger=self.trigger.name,
            change_type=gap.change_type,
            records=len(gap.record_ids),
        )
        if self.backfill is None:
            return []
        if gap.overflow or not self.backfill.can_reread(gap):  # saved with this batch's
            # position, once the whole fill is stored
            # Never later than now: a notice stamped in the future would fill nothing.
            since = min(gap.commit_time, self._clock()) - RESUME_OVERLAP
            await self.positions.fill(self.backfill, since, save=False)
            return []
        return await self.backfill.reread(gap)

    async def _verify_if_silent(self) -> None:
        threshold = self.trigger.verify_after
        if threshold is None or self.backfill is None:
            return
        if self._clock() - self._last_event_at < threshold:
            return
        since = self._last_event_at
        self._last_event_at = self._clock()
        missed = await self.backfill.count_since(since)
        log.info("stream_verified", trigger=self.trigger.name, missed=missed)
        if missed:
            self._count_fault("silence_missed")
            await self.positions.fill(self.backfill, since - RESUME_OVERLAP, save=False)

    def _replay_from(self, resume: StreamResume | None) -> int:
        if resume is not None and isinstance(resume.replay_id, int):
            return resume.replay_id
        if resume is not None and resume.fill_from is not None:
            # Nothing to back-fill from (platform events): replay what is retained and drop
            # what is older than the time the stream had reached (by Salesforce's stamps).
            self._not_before = resume.fill_from
            return _REPLAY_ALL
        if self.trigger.start_from == "latest":
            # From now on; the start is saved as the time reached, so a restart or re-subscribe
            # before the first event resumes from it.
            return _REPLAY_NEW
        return _REPLAY_ALL

    async def _relogin(self, stopping: asyncio.Event) -> None:
        """A refused login (AuthenticationError) and an unreachable or failing token endpoint
        (SalesforceUnavailable, 5xx) are both retried by the next round, after a back-off."""
        await self._pause(stopping, "stream_relogin_backoff")
        try:
            await self._client.session.relogin(await self._client.session.token())
        except SftriggerdError as exc:  # refused, or the token endpoint failed: back off
            self.status.state = "failed"
            self._fault("stream_login_failed", exc, level="error")

    async def _pause(self, stopping: asyncio.Event, event: str) -> None:
        delay_s = self._pacer.pause_s()
        if delay_s > 0:
            log.warning(event, trigger=self.trigger.name, delay_s=round(delay_s, 2))
            await wait(stopping, delay_s)

    async def _back_off(self, stopping: asyncio.Event) -> None:
        await wait(stopping, self._pacer.back_off_s())

    async def _disconnect(self, bayeux: BayeuxClient) -> None:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            return  # shutting down past its grace: the server expires the client on its own
        try:
            await bayeux.disconnect(timeout_s=_DISCONNECT_TIMEOUT_S)
        except SalesforceError:
            pass  # the server expires the client on its own

    def _set_connected(self, connected: bool) -> None:
        self.status.connected = connected
        if connected:
            self.status.state = "running"
            self.status.caught_up_to = self._clock()
        self._metrics.stream_connected.labels(trigger=self.trigger.name).set(int(connected))

    def _fault(self, event: str, exc: Exception, level: str = "warning") -> None:
        self._count_fault(event.removeprefix("stream_"))
        error = strip_userinfo(str(exc))
        self.status.last_error = error
        getattr(log, level)(event, trigger=self.trigger.name, channel=self.channel, error=error)

    def _count_fault(self, kind: str) -> None:
        self._metrics.stream_faults.labels(trigger=self.trigger.name, kind=kind).inc()
