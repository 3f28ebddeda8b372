"""Pure helpers of the streaming connection loop: what a streamed message's position is,
how a message that cannot be normalised is kept, and how long to wait after a failure.

Everything here reads what Salesforce sent and never raises on it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from ..events.cometd_envelope import MAX_REPLAY_ID, resumable_replay_id
from ..events.payload import poison_text, storable_text
from ..store.records import PoisonEvent
from ..urls import strip_userinfo

__all__ = [
    "MAX_REPLAY_ID",
    "backoff_delay_s",
    "immediate_once_delay_s",
    "message_replay_id",
    "poison_event",
]

MAX_REASON_CHARS = 500


def message_replay_id(message: dict[str, Any]) -> int | None:
    """The message's replay id, or None when it has none we could resume from."""
    return resumable_replay_id(message)


def poison_event(trigger: str, message: object, reason: str) -> PoisonEvent:
    """A message the source cannot read, kept with why (both bounded), for an operator to
    look at; the source moves past it."""
    reason = storable_text(strip_userinfo(reason), MAX_REASON_CHARS) or "unreadable message"
    return PoisonEvent(trigger=trigger, reason=reason, message=poison_text(message))


def backoff_delay_s(
    attempt: int,
    *,
    base_s: float,
    cap_s: float,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float:
    """The wait before retry number `attempt` (1, 2, ...): exponential, capped, with jitter.

    Half the delay is fixed and half random ("equal jitter"), so many daemons restarted
    together spread out, and none of them ever retries at once after a failure.
    """
    exponent = min(max(attempt, 1) - 1, 32)  # 2**32 * base is past any cap
    ceiling = min(cap_s, base_s * 2.0**exponent)
    return ceiling / 2 + uniform(0, ceiling / 2)


def immediate_once_delay_s(
    failures: int,
    *,
    base_s: float,
    cap_s: float,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float:
    """The wait after `failures` failed sessions in a row, for a fault that is routine once:
    the first re-handshake (Salesforce forgets clients every few hours) or re-login is
    immediate; a client forgotten again and again, or a fresh token refused again, backs off,
    so the loop can neither exhaust the org's concurrent-client limit nor hammer its login."""
    if failures <= 1:
        return 0.0
    return backoff_delay_s(failures - 1, base_s=base_s, cap_s=cap_s, uniform=uniform)
