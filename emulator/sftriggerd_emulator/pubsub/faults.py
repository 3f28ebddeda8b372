"""Faults of the Pub/Sub side, armed by `/_emulator/pubsub/...` control calls.

- `fail`: the next `count` calls (Subscribe, GetTopic, GetSchema; those whose method or
  topic contains `match`) end with a gRPC status and an `error-code` trailer of the test's
  choosing, e.g. UNAVAILABLE with `sfdc.platform.eventbus.grpc.service.unavailable`.
- `drop`: every open Subscribe stream ends now (UNAVAILABLE, as when a connection is reset).
- `silence`: open streams send nothing, neither events nor keepalives, until cleared: a
  half-open connection as a watchdog must see it; or (`keepalives_only`) events still flow
  but keepalives stop.
- `hold`: GetTopic and GetSchema calls whose `Method topic` contains `match` wait, unanswered,
  until released: a slow answer, to show what waits for it and what does not.

Expired sessions (`/_emulator/sessions/expire`), starved channels (`/_emulator/cometd/starve`)
and retention (`/_emulator/retention`) are shared with the CometD side.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import grpc

from sftriggerd_emulator.pubsub.errors import PubSubError


@dataclass
class _Armed:
    remaining: int  # negative: until cleared
    error: PubSubError
    match: str = ""
    given: int = 0


class PubSubFaults:
    def __init__(self) -> None:
        self._armed: _Armed | None = None
        self.silent = False
        self.keepalives_off = False
        # Bumped by `drop`: a stream opened under an older generation ends.
        self.drop_generation = 0
        self.hold_match: str | None = None
        self._released = asyncio.Event()
        self.holding = 0  # calls waiting for the hold's release now

    def fail(
        self, count: int, status: grpc.StatusCode, code: str, message: str, match: str
    ) -> None:
        self._armed = _Armed(count, PubSubError(status, code, message), match)

    def take(self, target: str) -> PubSubError | None:
        """The error this call (`Method topic`) ends with, consuming one; or None."""
        armed = self._armed
        if armed is None or armed.remaining == 0 or armed.match not in target:
            return None
        if armed.remaining > 0:
            armed.remaining -= 1
        armed.given += 1
        return armed.error

    def drop(self) -> None:
        self.drop_generation += 1

    def hold(self, match: str | None) -> None:
        """Holds the unary calls matching `match` from now on; None releases every one."""
        if match is None:
            self._released.set()
            self._released = asyncio.Event()
        self.hold_match = match

    async def held(self, target: str) -> None:
        """Returns at once unless the hold matches this call (`Method topic`); then when
        the hold is released."""
        if self.hold_match is None or self.hold_match not in target:
            return
        released = self._released
        self.holding += 1
        try:
            await released.wait()
        finally:
            self.holding -= 1

    def shown(self) -> dict[str, Any]:
        armed = self._armed
        fail: dict[str, Any] = {}
        if armed is not None and armed.remaining:
            fail = {
                "count": armed.remaining,
                "status": armed.error.status.name,
                "error_code": armed.error.code,
                "match": armed.match,
                "given": armed.given,
            }
        return {
            "fail": fail,
            "silent": self.silent,
            "keepalives_off": self.keepalives_off,
            "drops": self.drop_generation,
            "hold": self.hold_match,
            "holding": self.holding,
        }
