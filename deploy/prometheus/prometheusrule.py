"""Renders alerts.yaml as a Prometheus Operator PrometheusRule, rules and formatting unchanged.

    python deploy/prometheus/prometheusrule.py > deploy/kubernetes/monitoring/prometheusrule.yaml

tests/deploy/test_alerts.py fails when the committed file and this rendering differ.
"""

from __future__ import annotations

import sys
from pathlib import Path

ALERTS = Path(__file__).with_name("alerts.yaml")

HEADER = """\
# GENERATED from deploy/prometheus/alerts.yaml by deploy/prometheus/prometheusrule.py: edit
# alerts.yaml, then run  python deploy/prometheus/prometheusrule.py > THIS FILE
# The sftriggerd alert rules for the Prometheus Operator. Like the ServiceMonitor, it may need
# the label your Prometheus resource selects rules by (ruleSelector), e.g. release: ...
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: sftriggerd
  labels:
    app.kubernetes.io/name: sftriggerd
    app.kubernetes.io/instance: sftriggerd
spec:
"""


def render(alerts_text: str) -> str:
    """The PrometheusRule text: alerts.yaml without its comment header, indented under spec."""
    lines = alerts_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("groups:"))
    body = ["  " + line if line.strip() else "" for line in lines[start:]]
    return HEADER + "\n".join(body) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(ALERTS.read_text()))
