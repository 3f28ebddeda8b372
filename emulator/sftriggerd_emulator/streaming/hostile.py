"""What a hostile or broken Salesforce may send a streaming client, armed by control calls.

`POST /_emulator/cometd/advice` puts any JSON as the `advice` of the next connect answers
(a non-numeric interval, a string, ...); `POST /_emulator/cometd/unknown-client` answers
connects with `403::Unknown client` for a number of connects or seconds while the client
stays known, as when a load balancer routes a client's polls to a node that never saw it.
A client that re-handshakes in a tight loop on that answer piles up clients until the
org-wide limit refuses everyone; the `handshakes` and `unknown_client_refusals` counters
show it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

_UNSET = object()


@dataclass
class _Countdown:
    remaining: int = 0  # negative: until cleared
    until_monotonic: float = 0.0

    def take(self) -> bool:
        if self.until_monotonic and time.monotonic() < self.until_monotonic:
            return True
        if self.remaining == 0:
            return False
        if self.remaining > 0:
            self.remaining -= 1
        return True

    def shown(self) -> dict[str, float | int]:
        left_s = max(0.0, self.until_monotonic - time.monotonic())
        return {"count": self.remaining, "seconds_left": round(left_s, 3)}


class HostileControls:
    def __init__(self) -> None:
        self._advice: Any = _UNSET
        self._advice_left = _Countdown()
        self._refusals = _Countdown()

    def set_advice(self, advice: Any, count: int) -> None:
        self._advice = advice
        self._advice_left = _Countdown(remaining=count)

    def next_advice(self) -> tuple[bool, Any]:
        """(True, advice) when the next connect answer carries the armed advice."""
        if self._advice is _UNSET or not self._advice_left.take():
            return False, None
        return True, self._advice

    def refuse_unknown(self, count: int, seconds: float) -> None:
        until = time.monotonic() + seconds if seconds > 0 else 0.0
        self._refusals = _Countdown(remaining=count, until_monotonic=until)

    def take_refusal(self) -> bool:
        """Whether this connect is answered `403::Unknown client`, consuming one."""
        return self._refusals.take()

    def shown(self) -> dict[str, Any]:
        return {
            "advice": {"count": self._advice_left.remaining},
            "unknown_client": self._refusals.shown(),
        }
