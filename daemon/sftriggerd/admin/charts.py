"""Small charts for the status page, drawn on the server as inline SVG.

Pure functions of counts: no script draws them, and they carry no `style` attribute, so the
page's CSP (its one style block by hash, its one script by hash) needs nothing new. Colours
come from classes the page's stylesheet defines; sizes are SVG attributes. Each chart is an
image to assistive technology (`role="img"`), with its totals as its name: deliveries per
minute per endpoint, and each trigger's highest lag per minute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from .markup import duration_text

# One bar per minute, in viewBox units; the stylesheet scales the whole picture to its box.
BAR_WIDTH = 4
BAR_GAP = 1
CHART_HEIGHT = 40


@dataclass(frozen=True)
class MinuteCount:
    """Deliveries of one endpoint finished in one minute: delivered, and failed (dead)."""

    delivered: int
    failed: int


def _height(count: int, scale: int) -> float:
    """A bar's height for `count` when `scale` fills the chart; never negative."""
    if count <= 0 or scale <= 0:
        return 0.0
    return round(CHART_HEIGHT * min(count, scale) / scale, 2)


def _xml_text(text: str) -> str:
    """`text` on one line without what XML cannot hold (control characters, lone
    surrogates): the SVG must parse as XML too, whatever an endpoint is called."""
    return "".join(
        char
        for char in text
        if ("\x20" <= char < "\ud800") or ("\ue000" <= char <= "\ufffd") or char > "\uffff"
    )


def chart_label(name: str, minutes: Sequence[MinuteCount]) -> str:
    """The chart's name for assistive technology: the endpoint and its totals."""
    delivered = sum(max(0, minute.delivered) for minute in minutes)
    failed = sum(max(0, minute.failed) for minute in minutes)
    return (
        f"{_xml_text(name)}: {delivered} delivered, {failed} failed"
        f" in the last {len(minutes)} minute{'' if len(minutes) == 1 else 's'}"
    )


def minute_bars(name: str, minutes: Sequence[MinuteCount]) -> str:
    """Stacked bars, oldest minute at the left: delivered at the bottom, failed on top.

    Every minute gets its two bars (a quiet minute's are zero high), so the picture keeps
    its time axis. One scale for the whole chart: the busiest minute fills the height."""
    label = escape(chart_label(name, minutes), quote=True)
    scale = max((max(0, m.delivered) + max(0, m.failed) for m in minutes), default=0)
    width = max(1, len(minutes)) * (BAR_WIDTH + BAR_GAP)
    bars: list[str] = []
    for index, minute in enumerate(minutes):
        x = index * (BAR_WIDTH + BAR_GAP)
        delivered = _height(max(0, minute.delivered), scale)
        failed = min(_height(max(0, minute.failed), scale), CHART_HEIGHT - delivered)
        failed = max(0.0, round(failed, 2))
        bars.append(
            f'<rect class="bar-delivered" x="{x}" y="{CHART_HEIGHT - delivered}"'
            f' width="{BAR_WIDTH}" height="{delivered}"/>'
            f'<rect class="bar-failed" x="{x}" y="{CHART_HEIGHT - delivered - failed}"'
            f' width="{BAR_WIDTH}" height="{failed}"/>'
        )
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img"'
        f' aria-label="{label}" viewBox="0 0 {width} {CHART_HEIGHT}"'
        f' preserveAspectRatio="none" width="{width}" height="{CHART_HEIGHT}">'
        f"<title>{label}</title>"
        f'<line class="axis" x1="0" y1="{CHART_HEIGHT}" x2="{width}" y2="{CHART_HEIGHT}"/>'
        f"{''.join(bars)}</svg>"
    )


def fill_minutes(
    counts: dict[int, MinuteCount], last_minute: int, minutes: int = 60
) -> list[MinuteCount]:
    """`minutes` counts, oldest first, ending at `last_minute` (minutes since the epoch);
    a minute with no count is zero."""
    first = last_minute - minutes + 1
    return [counts.get(minute, MinuteCount(0, 0)) for minute in range(first, last_minute + 1)]


def lag_label(name: str, minutes: Sequence[float | None]) -> str:
    """The lag chart's name for assistive technology: the trigger, its highest and latest
    lag (or that nothing was sampled)."""
    sampled = [max(0.0, lag) for lag in minutes if lag is not None]
    span = f"in the last {len(minutes)} minute{'' if len(minutes) == 1 else 's'}"
    if not sampled:
        return f"{_xml_text(name)}: no lag sampled {span}"
    latest = next(max(0.0, lag) for lag in reversed(minutes) if lag is not None)
    return (
        f"{_xml_text(name)}: lag at most {duration_text(max(sampled))},"
        f" latest {duration_text(latest)}, {span}"
    )


def lag_bars(name: str, minutes: Sequence[float | None]) -> str:
    """One bar per minute, oldest at the left, as high as the minute's highest lag; a
    minute without a sample has no bar (a gap, not a zero). The worst minute fills the
    height, so the picture shows the shape and the name says the numbers."""
    label = escape(lag_label(name, minutes), quote=True)
    scale = max((max(0.0, lag) for lag in minutes if lag is not None), default=0.0)
    width = max(1, len(minutes)) * (BAR_WIDTH + BAR_GAP)
    bars: list[str] = []
    for index, lag in enumerate(minutes):
        if lag is None:
            continue
        height = round(CHART_HEIGHT * max(0.0, lag) / scale, 2) if scale > 0 else 0.0
        # A caught-up minute still shows a sliver, so it reads as sampled, not missing.
        height = max(height, 0.5)
        bars.append(
            f'<rect class="bar-lag" x="{index * (BAR_WIDTH + BAR_GAP)}"'
            f' y="{round(CHART_HEIGHT - height, 2)}" width="{BAR_WIDTH}" height="{height}"/>'
        )
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img"'
        f' aria-label="{label}" viewBox="0 0 {width} {CHART_HEIGHT}"'
        f' preserveAspectRatio="none" width="{width}" height="{CHART_HEIGHT}">'
        f"<title>{label}</title>"
        f'<line class="axis" x1="0" y1="{CHART_HEIGHT}" x2="{width}" y2="{CHART_HEIGHT}"/>'
        f"{''.join(bars)}</svg>"
    )
