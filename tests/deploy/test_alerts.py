"""deploy/prometheus/alerts.yaml without Prometheus: each rule complete, its PromQL parsed, every
metric it reads exposed by sftriggerd, every alert unit-tested (promtool runs those tests in
deploy/check-prometheus.sh) and explained in docs/operations.md, and the operator's copy in sync.
"""

from __future__ import annotations

import runpy
from typing import Any

import promql_parser
import pytest
import yaml

from tests.deploy.manifests import DEPLOY, KUBERNETES, ROOT
from tests.deploy.promql import exposed_series, selected_metrics

ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
UNIT_TESTS = DEPLOY / "prometheus" / "alerts.test.yaml"
PROMETHEUS_RULE = KUBERNETES / "monitoring" / "prometheusrule.yaml"
# Series that Prometheus itself writes for every target.
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
SEVERITIES = {"critical", "warning", "info"}


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


RULES = rules()


def test_there_are_rules_and_their_names_are_unique() -> None:
    names = [rule["alert"] for rule in RULES]
    assert len(names) >= 8
    assert len(set(names)) == len(names)
    assert all(name.startswith("Sftriggerd") for name in names)


@pytest.mark.parametrize("rule", RULES, ids=[rule["alert"] for rule in RULES])
def test_rule_is_complete(rule: dict[str, Any]) -> None:
    assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}
    assert rule["labels"]["severity"] in SEVERITIES
    assert rule["annotations"]["summary"].strip()
    assert rule["annotations"]["description"].strip()
    promql_parser.parse_duration(rule["for"])


@pytest.mark.parametrize("rule", RULES, ids=[rule["alert"] for rule in RULES])
def test_rule_reads_only_metrics_that_exist(rule: dict[str, Any]) -> None:
    used = selected_metrics(rule["expr"])
    assert used, "the expression selects no metric"
    unknown = used - exposed_series() - PROMETHEUS_OWN
    assert not unknown, f"not in sftriggerd.metrics: {sorted(unknown)}"


def test_the_contract_metrics_are_all_watched() -> None:
    """Each alert-worthy metric of the operations guide has at least one rule."""
    used = set().union(*(selected_metrics(rule["expr"]) for rule in RULES))
    for name in (
        "sftriggerd_deliveries_total",
        "sftriggerd_outbox_pending",
        "sftriggerd_checkpoint_lag_seconds",
        "sftriggerd_stream_connected",
        "sftriggerd_salesforce_api_usage_ratio",
        "sftriggerd_end_to_end_seconds_bucket",
        "up",
    ):
        assert name in used, name


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    fired = {
        case["alertname"]
        for test in yaml.safe_load(UNIT_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {rule["alert"] for rule in RULES} <= fired


def test_every_alert_is_explained_in_the_operations_guide() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text()
    missing = [rule["alert"] for rule in RULES if rule["alert"] not in guide]
    assert not missing


def test_the_prometheus_operator_copy_is_in_sync() -> None:
    render = runpy.run_path(str(DEPLOY / "prometheus" / "prometheusrule.py"))["render"]
    assert PROMETHEUS_RULE.read_text() == render(ALERTS.read_text()), (
        "run: python deploy/prometheus/prometheusrule.py > "
        "deploy/kubernetes/monitoring/prometheusrule.yaml"
    )
