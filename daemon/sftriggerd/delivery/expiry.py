"""Dead letters by age: a delivery past its endpoint's `retry.max_age` goes dead whether or not
anything was attempted. An open breaker attempts nothing, and a delivery can wait behind an
older change of its record; without this sweep such a delivery would stay pending until a
probe or the older change let it through, hours after it should have been given up."""

from __future__ import annotations

from ..config.durations import format_duration
from ..config.settings import EndpointSettings
from .breaker import BreakerState

# Updated per store transaction, so one sweep over a long backlog never holds the write
# lock for long (claims and outcomes go in between).
EXPIRE_BATCH = 1000


def expiry_reason(endpoint: EndpointSettings, breaker: BreakerState) -> str:
    """What `last_error` says about a delivery that aged out without a final attempt."""
    reason = f"expired after max_age {format_duration(endpoint.retry.max_age)}"
    if breaker == "closed":
        return f"{reason} without a final attempt"
    return f"{reason}; breaker {breaker.replace('_', '-')}"
