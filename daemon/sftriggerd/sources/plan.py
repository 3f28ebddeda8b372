"""Which source runs each trigger, and why: a pure decision from the configuration."""

from __future__ import annotations

from dataclasses import dataclass

from ..config.settings import TriggerSettings
from .status import Mode


@dataclass(frozen=True)
class SourcePlan:
    mode: Mode
    reason: str


def plan_source(trigger: TriggerSettings, streaming_available: bool) -> SourcePlan:
    if trigger.mode == "polling":
        return SourcePlan("polling", "configured: mode polling")
    if trigger.mode == "streaming":
        return SourcePlan("streaming", "configured: mode streaming")
    if trigger.channel_kind in ("platform_event", "generic"):
        return SourcePlan("streaming", f"auto: {trigger.channel_kind} channels can only stream")
    if streaming_available:
        return SourcePlan("streaming", f"auto: subscribing to {trigger.resolved_channel}")
    return SourcePlan("polling", "auto: streaming is not available in this version")
