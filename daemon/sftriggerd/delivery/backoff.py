"""When to try a failed delivery again, or that it is dead: pure arithmetic on times.

The max_age clock runs from `retry_since` (the delivery's creation or its last redrive). A
retry is never scheduled past that deadline; the last one is moved onto it, so the final
attempt happens exactly when the delivery is about to age out, and fails it for good.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

# Jitter spreads retries of many deliveries that failed together (an endpoint outage) so
# they do not come back as one burst: each step is stretched by a factor in [0.8, 1.2).
JITTER_SPREAD = 0.2


def schedule_step(schedule: Sequence[timedelta], attempts: int) -> timedelta:
    """The wait after a failed attempt, given the attempts made before it; the last repeats."""
    if not schedule:
        raise ValueError("a retry schedule needs at least one step")
    return schedule[min(max(attempts, 0), len(schedule) - 1)]


def jittered(step: timedelta, jitter: float) -> timedelta:
    """`step` scaled by 1 ± JITTER_SPREAD; `jitter` in [0, 1), 0.5 leaves the step as is."""
    if not 0.0 <= jitter < 1.0:
        raise ValueError(f"jitter must be in [0, 1), not {jitter}")
    return step * (1.0 + JITTER_SPREAD * (2.0 * jitter - 1.0))


def retry_deadline(retry_since: datetime, max_age: timedelta) -> datetime:
    return retry_since + max_age


def next_attempt_at(
    schedule: Sequence[timedelta],
    max_age: timedelta,
    attempts: int,
    retry_since: datetime,
    now: datetime,
    jitter: float,
) -> datetime | None:
    """When to try again after a failed attempt, or None when the delivery is dead."""
    deadline = retry_deadline(retry_since, max_age)
    if now >= deadline:
        return None
    return min(now + jittered(schedule_step(schedule, attempts), jitter), deadline)


def honour_retry_after(
    retry_after: datetime, max_age: timedelta, retry_since: datetime, now: datetime
) -> datetime | None:
    """The endpoint's own `Retry-After`, never before now, bounded by max_age (None: dead)."""
    deadline = retry_deadline(retry_since, max_age)
    if now >= deadline:
        return None
    return min(max(retry_after, now), deadline)
