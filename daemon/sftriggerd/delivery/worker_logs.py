"""What an endpoint worker logs of each attempt's outcome and of its breaker's changes."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from ..store.records import Claim, Delivered, Outcome, Retry
from .breaker import Breaker, Transition

# For a cheap level check before a per-delivery debug line.
_stdlib_log = logging.getLogger("sftriggerd.delivery.worker")


def log_outcome(log: Any, claim: Claim, outcome: Outcome, next_attempt_at: datetime | None) -> None:
    """`next_attempt_at`: when a retry comes due (None for other outcomes)."""
    attempt = claim.attempts + 1
    if isinstance(outcome, Delivered):
        if _stdlib_log.isEnabledFor(logging.DEBUG):
            log.debug(
                "delivery_succeeded",
                event_id=claim.event_id,
                delivery_id=claim.delivery_id,
                status=outcome.status,
                attempt=attempt,
            )
    elif isinstance(outcome, Retry):
        log.warning(
            "delivery_failed",
            event_id=claim.event_id,
            delivery_id=claim.delivery_id,
            status=outcome.status,
            error=outcome.error,
            attempt=attempt,
            next_attempt_at=next_attempt_at.isoformat() if next_attempt_at else None,
        )
    else:
        log.error(
            "delivery_dead",
            event_id=claim.event_id,
            delivery_id=claim.delivery_id,
            status=outcome.status,
            error=outcome.error,
            attempt=attempt,
        )


def log_transition(log: Any, breaker: Breaker, transition: Transition | None) -> None:
    if transition is None:
        return
    snapshot = breaker.snapshot()
    if transition == "closed":
        log.info("breaker_closed")
        return
    log.warning(
        "breaker_opened" if transition == "opened" else "breaker_reopened",
        consecutive_failures=snapshot.consecutive_failures,
        cooldown_s=snapshot.cooldown.total_seconds(),
    )
