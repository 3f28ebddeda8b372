"""Resend, bulk redrive and rewind, as the CLI and the admin API both do them: the checks on
what the operator asked, then the store operations (`store.replay`, `Store.rewind`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from .config import Settings
from .config.settings import TriggerSettings
from .errors import UsageError
from .moments import parse_moment
from .sources.position import encode
from .sources.rewind import plan_rewind
from .store.base import Store
from .store.leadership import Fence
from .store.records import Checkpoint, DeliveryStatus
from .store.replay import REDRIVABLE, RESENDABLE, Requeued, Selection

Operation = Literal["redrive", "resend"]
Restart = Callable[[Callable[[], Awaitable[Requeued | None]]], Awaitable[Requeued | None]]


class UnknownNameError(UsageError):
    """An endpoint or trigger name that the configuration does not have."""


def endpoint_named(settings: Settings, name: str) -> str:
    known = [endpoint.name for endpoint in settings.endpoints]
    if name not in known:
        raise UnknownNameError(
            f"no endpoint named {name!r} in the configuration (known: {', '.join(known)})"
        )
    return name


def trigger_named(settings: Settings, name: str) -> TriggerSettings:
    for trigger in settings.triggers:
        if trigger.name == name:
            return trigger
    known = ", ".join(trigger.name for trigger in settings.triggers)
    raise UnknownNameError(f"no trigger named {name!r} in the configuration (known: {known})")


def bulk_selection(
    settings: Settings,
    operation: Operation,
    endpoint: str | None,
    status: str | None,
    since: str | None,
    until: str | None,
    now: datetime,
) -> Selection:
    """The deliveries of one endpoint that a bulk redrive (dead ones) or resend (dead and
    delivered ones, or the one `status` named) takes, made between `since` and `until`."""
    if endpoint is None:
        raise UsageError(f"a bulk {operation} needs an endpoint")
    allowed = REDRIVABLE if operation == "redrive" else RESENDABLE
    if status is not None and status not in allowed:
        raise UsageError(f"{operation} takes status {' or '.join(sorted(allowed))}, not {status!r}")
    statuses: frozenset[DeliveryStatus] = (
        allowed if status is None else frozenset(s for s in allowed if s == status)
    )
    start = _moment("since", since, now)
    end = _moment("until", until, now)
    if start is not None and end is not None and start >= end:
        raise UsageError("--since must come before --until")
    return Selection(
        endpoint=endpoint_named(settings, endpoint), statuses=statuses, since=start, until=end
    )


def _moment(name: str, text: str | None, now: datetime) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_moment(text, now)
    except ValueError as exc:
        raise UsageError(f"--{name}: {exc}") from None


@dataclass(frozen=True)
class RewindDone:
    trigger: str
    point: str
    position: dict[str, Any]
    resent: Requeued | None


async def rewind(
    store: Store,
    trigger: TriggerSettings,
    to: str,
    resend: bool,
    now: datetime,
    restart: Restart | None = None,
    fence: Fence | None = None,
) -> RewindDone:
    """Moves the trigger's checkpoint back to `to` (refused outside retention) and, with
    `resend`, queues the deliveries of the stored events from there again. `restart` runs
    the change while the running source is stopped (a rewind through the admin API); with
    `fence` (this replica's lease on the trigger) the store refuses the move, raising
    `LeaseLostError`, unless this replica leads the trigger."""
    plan = plan_rewind(trigger, to, now)
    position = encode(plan.position)
    checkpoint = Checkpoint(trigger=trigger.name, position=position, event_time=plan.event_time)

    async def work() -> Requeued | None:
        # The fenced move first: a replica that lost the trigger's lease is refused here
        # (`LeaseLostError`) before it has resent anything. Either order re-reads correctly
        # (the source is stopped around both, or not running at all), so the order is only
        # about what a failure between the two leaves: here, a moved checkpoint and nothing
        # resent, which a second rewind with `resend` completes (moving it to the same point
        # again is harmless); resending first would instead send again on behalf of a
        # replica that may not lead the trigger, and a refused rewind could not take it back.
        await store.rewind(trigger.name, checkpoint, fence)
        return await store.requeue(plan.resend) if resend else None

    resent = await (restart(work) if restart is not None else work())
    return RewindDone(trigger.name, plan.point, position, resent)


def requeued_text(done: Requeued, what: str) -> str:
    text = f"{done.requeued} {what} pending again"
    if done.already_pending:
        text += f"; {done.already_pending} already pending, left as they were"
    return text


def rewind_text(done: RewindDone) -> str:
    text = f"trigger {done.trigger} rewound to {done.point}"
    if done.resent is not None:
        text += "; " + requeued_text(done.resent, "stored deliveries from there are")
    else:
        text += "; events already stored will not be sent again (use --resend for that)"
    return text
