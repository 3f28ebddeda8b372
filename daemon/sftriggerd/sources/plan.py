"""Which source runs each trigger, and why: a pure decision from the configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config.settings import TriggerSettings

Plan = Literal["streaming", "polling", "auto"]


@dataclass(frozen=True)
class SourcePlan:
    plan: Plan
    reason: str


def plan_source(trigger: TriggerSettings) -> SourcePlan:
    if trigger.mode == "polling":
        return SourcePlan("polling", "configured: mode polling")
    if trigger.mode == "streaming":
        return SourcePlan("streaming", f"configured: mode streaming on {trigger.resolved_channel}")
    if trigger.channel_kind in ("platform_event", "generic"):
        return SourcePlan("streaming", f"auto: {trigger.channel_kind} channels can only stream")
    return SourcePlan("auto", f"auto: subscribing to {trigger.resolved_channel}")
