"""The status page's SVG charts: well-formed, one bar pair per minute, never upside down."""

from __future__ import annotations

from xml.etree import ElementTree

from hypothesis import given
from hypothesis import strategies as st

from sftriggerd.admin.charts import (
    CHART_HEIGHT,
    MinuteCount,
    chart_label,
    fill_minutes,
    lag_bars,
    lag_label,
    minute_bars,
)

SVG = "{http://www.w3.org/2000/svg}"
counts = st.integers(min_value=-5, max_value=10**7)
minute_lists = st.lists(st.builds(MinuteCount, counts, counts), max_size=120)


def _bars(svg: str, kind: str) -> list[ElementTree.Element]:
    root = ElementTree.fromstring(svg)
    return [rect for rect in root.iter(f"{SVG}rect") if rect.get("class") == f"bar-{kind}"]


@given(minute_lists, st.text(max_size=30))
def test_a_chart_is_valid_xml_with_one_bar_pair_per_minute(
    minutes: list[MinuteCount], name: str
) -> None:
    svg = minute_bars(name, minutes)
    root = ElementTree.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("aria-label") == chart_label(name, minutes)
    assert root.findtext(f"{SVG}title") == chart_label(name, minutes)
    assert "style" not in svg  # the page's CSP allows no style attribute
    assert len(_bars(svg, "delivered")) == len(minutes)
    assert len(_bars(svg, "failed")) == len(minutes)


@given(minute_lists)
def test_bars_are_never_negative_and_stay_inside_the_chart(minutes: list[MinuteCount]) -> None:
    svg = minute_bars("hook", minutes)
    for delivered, failed in zip(_bars(svg, "delivered"), _bars(svg, "failed"), strict=True):
        low, high = float(delivered.get("height", "")), float(failed.get("height", ""))
        assert low >= 0 and high >= 0
        assert low + high <= CHART_HEIGHT + 0.01
        assert float(failed.get("y", "")) >= -0.01


def test_the_busiest_minute_fills_the_height_and_a_quiet_one_is_flat() -> None:
    svg = minute_bars("hook", [MinuteCount(0, 0), MinuteCount(6, 2), MinuteCount(2, 0)])
    heights = [float(rect.get("height", "")) for rect in _bars(svg, "delivered")]
    failed = [float(rect.get("height", "")) for rect in _bars(svg, "failed")]
    assert heights == [0.0, 30.0, 10.0]
    assert failed == [0.0, 10.0, 0.0]
    assert chart_label("hook", [MinuteCount(6, 2), MinuteCount(2, 0)]) == (
        "hook: 8 delivered, 2 failed in the last 2 minutes"
    )


def test_a_name_cannot_become_markup() -> None:
    svg = minute_bars('<script>"x"</script>', [MinuteCount(1, 0)])
    assert "<script>" not in svg
    ElementTree.fromstring(svg)


def test_missing_minutes_are_zero_oldest_first() -> None:
    filled = fill_minutes({100: MinuteCount(3, 1), 97: MinuteCount(1, 0)}, 100, minutes=5)
    assert filled == [
        MinuteCount(0, 0),
        MinuteCount(1, 0),
        MinuteCount(0, 0),
        MinuteCount(0, 0),
        MinuteCount(3, 1),
    ]


lag_minutes = st.lists(
    st.one_of(st.none(), st.floats(min_value=-1, max_value=10**7, allow_nan=False)),
    max_size=90,
)


@given(lag_minutes, st.text(max_size=30))
def test_a_lag_chart_is_valid_xml_with_one_bar_per_sampled_minute(
    minutes: list[float | None], name: str
) -> None:
    svg = lag_bars(name, minutes)
    root = ElementTree.fromstring(svg)
    assert root.get("role") == "img" and "style" not in svg
    assert root.get("aria-label") == lag_label(name, minutes)
    assert root.findtext(f"{SVG}title") == lag_label(name, minutes)
    bars = _bars(svg, "lag")
    assert len(bars) == sum(1 for lag in minutes if lag is not None)
    for bar in bars:
        height, y = float(bar.get("height", "")), float(bar.get("y", ""))
        assert 0 < height <= CHART_HEIGHT + 0.01 and y >= -0.01


def test_the_worst_minute_fills_the_lag_chart_and_a_gap_has_no_bar() -> None:
    svg = lag_bars("accounts", [None, 30.0, 7.5, None, 0.0])
    bars = _bars(svg, "lag")
    assert [float(bar.get("x", "")) for bar in bars] == [5.0, 10.0, 20.0]
    assert [float(bar.get("height", "")) for bar in bars] == [40.0, 10.0, 0.5]
    assert lag_label("accounts", [None, 30.0, 7.5, None, 0.0]) == (
        "accounts: lag at most 30 s, latest 0.0 s, in the last 5 minutes"
    )
    assert lag_label("accounts", [None, None]) == "accounts: no lag sampled in the last 2 minutes"
