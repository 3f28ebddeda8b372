"""The status page's lag charts: one small chart per trigger of its highest lag in each of
the last 60 minutes, drawn by `charts.lag_bars` from the in-memory `LagHistory`.

Only the replica leading a trigger measures its lag; on another one the trigger shows
"not led here" instead of a chart, never a flat zero. The history is not stored, so after
a restart the note under the charts says since when it has been kept.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..lag_history import LagMinutes
from .charts import lag_bars
from .markup import duration_text, e


def _figure(trigger: dict[str, Any], minutes: LagMinutes | None) -> str:
    name = str(trigger.get("name"))
    caption = f"<strong>{e(name)}</strong> "
    if trigger.get("state") == "standby":
        leader = trigger.get("leader")
        by = f" (led by {e(leader)})" if leader else ""
        return (
            f'<figure data-lag-chart="{e(name)}"><figcaption>{caption}'
            f'<span class="muted">not led here{by}</span></figcaption></figure>'
        )
    if minutes is None or minutes.highest is None:
        caption += '<span class="muted">no lag sampled yet</span>'
    else:
        caption += (
            f"lag at most {e(duration_text(minutes.highest))},"
            f" latest {e(duration_text(minutes.latest or 0.0))}"
        )
    values = minutes.values if minutes is not None else []
    return (
        f'<figure data-lag-chart="{e(name)}"><figcaption>{caption}</figcaption>'
        f"{lag_bars(name, values)}</figure>"
    )


def render_lag_charts(
    triggers: list[dict[str, Any]],
    lag: dict[str, LagMinutes],
    kept_since: datetime | None,
    now: datetime,
) -> str:
    """The charts and their note, or nothing when this process keeps no lag history."""
    if kept_since is None or not triggers:
        return ""
    figures = "".join(_figure(trigger, lag.get(str(trigger.get("name")))) for trigger in triggers)
    span = (
        f"since {kept_since:%H:%M} UTC, when this process started (the history is kept in"
        " memory only)"
        if now - kept_since < timedelta(hours=1)
        else "over the last hour"
    )
    return (
        f'<div class="charts lag-charts">{figures}</div>'
        '<p class="muted">Lag per trigger, the highest of each minute, oldest at the left,'
        f" as this replica measured it, {e(span)}.</p>"
    )
