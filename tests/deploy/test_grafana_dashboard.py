"""deploy/grafana/sftriggerd.json: every query parses as PromQL (promql-parser, and promtool's
own parser when it is at hand) and reads only series sftriggerd exposes; the panels an operator
looks for are there; the data source and the endpoint and trigger filters are variables."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import DEPLOY
from tests.deploy.promql import exposed_series, find_promtool, selected_metrics

DASHBOARD_FILE = DEPLOY / "grafana" / "sftriggerd.json"
DASHBOARD: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
PANELS = [panel for panel in DASHBOARD["panels"] if panel["type"] != "row"]
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
# The panels, by title, and a metric each must read.
EXPECTED = {
    "Checkpoint lag per trigger": "sftriggerd_checkpoint_lag_seconds",
    "Stream connected": "sftriggerd_stream_connected",
    "Outbox pending per endpoint": "sftriggerd_outbox_pending",
    "Outbox dead per endpoint": "sftriggerd_outbox_dead",
    "Delivery rate by outcome": "sftriggerd_deliveries_total",
    "Delivery attempt latency": "sftriggerd_delivery_attempt_seconds_bucket",
    "End-to-end latency": "sftriggerd_end_to_end_seconds_bucket",
    "Failures by cause": "sftriggerd_delivery_failures_total",
    "Breaker state": "sftriggerd_breaker_open",
    "API budget used": "sftriggerd_salesforce_api_usage_ratio",
    "Poison events": "sftriggerd_poison_events_total",
}
# Grafana's own interval variables, which are not PromQL: a duration stands in for them.
_INTERVAL_VARIABLE = re.compile(r"\$__(?:rate_interval|interval|range)\b|\$\{__\w+\}")


def queries() -> list[tuple[str, str]]:
    """(panel title and refId, the expression as Prometheus receives it)."""
    return [
        (f"{panel['title']} {target['refId']}", _INTERVAL_VARIABLE.sub("5m", target["expr"]))
        for panel in PANELS
        for target in panel["targets"]
    ]


def test_the_expected_panels_are_there_and_read_their_metric() -> None:
    by_title = {panel["title"]: panel for panel in PANELS}
    for title, metric in EXPECTED.items():
        assert title in by_title, title
        read = set().union(
            *(selected_metrics(query) for name, query in queries() if name.startswith(title))
        )
        assert metric in read, (title, read)


def test_latency_panels_show_quantiles_of_the_histogram() -> None:
    for title in ("Delivery attempt latency", "End-to-end latency"):
        [panel] = [panel for panel in PANELS if panel["title"] == title]
        exprs = [target["expr"] for target in panel["targets"]]
        quantiles = {
            float(q) for expr in exprs for q in re.findall(r"histogram_quantile\(([\d.]+),", expr)
        }
        assert quantiles == {0.5, 0.95, 0.99}, title
        assert all("by (endpoint, le)" in expr for expr in exprs), title


@pytest.mark.parametrize(("name", "query"), queries(), ids=[name for name, _ in queries()])
def test_query_parses_and_reads_only_exposed_series(name: str, query: str) -> None:
    read = selected_metrics(query)
    assert read, f"{name}: reads no metric"
    assert read <= exposed_series(), read - exposed_series()
    for metric in read:
        if metric.endswith(("_total", "_bucket")):
            # A counter's raw value means nothing: only its rate or increase over a range.
            assert re.search(rf"(?:rate|increase)\({metric}(?:\{{[^}}]*\}})?\[", query), metric


def test_queries_parse_with_promtool(tmp_path: Path) -> None:
    """Prometheus' own parser, over a rules file with each query as a recording rule."""
    promtool = find_promtool()
    if promtool is None:
        pytest.skip("no promtool (bash deploy/check-prometheus.sh fetches one)")
    rules = [
        {"record": f"sftriggerd_dashboard:query_{n}", "expr": query}
        for n, (_, query) in enumerate(queries())
    ]
    rules_file = tmp_path / "dashboard-queries.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = subprocess.run(
        [str(promtool), "check", "rules", str(rules_file)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules)} rules found" in checked.stdout


def test_every_panel_and_variable_uses_the_datasource_variable() -> None:
    variables = {variable["name"]: variable for variable in DASHBOARD["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    for panel in PANELS:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert all(target["datasource"] == DATASOURCE for target in panel["targets"])
    for name in ("endpoint", "trigger"):
        assert variables[name]["datasource"] == DATASOURCE


@pytest.mark.parametrize("name", ["endpoint", "trigger"])
def test_filter_variables_list_label_values_of_an_exposed_metric(name: str) -> None:
    [variable] = [item for item in DASHBOARD["templating"]["list"] if item["name"] == name]
    found = re.fullmatch(rf"label_values\((\w+), {name}\)", variable["query"]["query"])
    assert found is not None and found.group(1) in exposed_series()
    assert variable["includeAll"] and variable["allValue"] == ".*"
    # Every panel that shows this label narrows its series by the variable.
    for panel in PANELS:
        for target in panel["targets"]:
            if f"{{{{{name}}}}}" in target["legendFormat"]:
                assert f'{name}=~"${name}"' in target["expr"], panel["title"]


def test_the_layout_is_sound() -> None:
    assert DASHBOARD["schemaVersion"] >= 36 and DASHBOARD["uid"] == "sftriggerd"
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    for panel in DASHBOARD["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
