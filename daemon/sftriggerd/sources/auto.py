"""`mode: auto`: stream when the channel can be subscribed, poll when it cannot, and try
streaming again now and then. Both sources hand over through the trigger's checkpoint time,
back-filling by polling, so a switch loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from ..logs import get_logger
from .polling import PollingSource
from .status import TriggerStatus
from .streaming import StreamingSource
from .transport import ChannelUnavailable

log = get_logger(__name__)


class AutoSource:
    def __init__(
        self,
        streaming: StreamingSource,
        polling: PollingSource,
        status: TriggerStatus,
        retry_streaming_every: timedelta = timedelta(minutes=10),
    ) -> None:
        self.name = f"auto:{streaming.trigger.name}"
        self._streaming = streaming
        self._polling = polling
        self.status = status
        self._retry_s = retry_streaming_every.total_seconds()
        streaming.fall_back = True
        self._polling_now = False

    def not_ready_reasons(self) -> list[str]:
        active = self._polling if self._polling_now else self._streaming
        return active.not_ready_reasons()

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            self._use("streaming", f"auto: subscribing to {self._streaming.channel}")
            try:
                await self._streaming.run(stopping)
                return
            except ChannelUnavailable as exc:
                reason = f"auto: streaming unavailable ({exc}); retrying every {self._retry_s:.0f}s"
                log.warning("auto_polling", trigger=self._streaming.trigger.name, error=str(exc))
                self._use("polling", reason)
                await self._poll_for_a_while(stopping)

    async def _poll_for_a_while(self, stopping: asyncio.Event) -> None:
        pause = asyncio.Event()
        polling = asyncio.create_task(self._polling.run(pause))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), self._retry_s)
        pause.set()
        await polling
        self._polling.watermark = None  # re-read from the store when polling resumes

    def _use(self, mode: str, reason: str) -> None:
        self._polling_now = mode == "polling"
        self.status.switched("polling" if self._polling_now else "streaming", reason)
