"""PromQL against sftriggerd's metrics, for the alert rules and the Grafana dashboard: which
series names the daemon can expose, which ones an expression selects, and promtool's own
parser when it is at hand (found the way deploy/check-prometheus.sh finds it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import promql_parser

from sftriggerd.metrics import Metrics


def exposed_series() -> set[str]:
    """Every series name sftriggerd's registry can expose, suffixes included."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count")}
        else:
            names.add(family.name)
    return names


def selected_metrics(expr: str) -> set[str]:
    """The metric names the expression's selectors read (parsing it on the way)."""
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def find_promtool() -> Path | None:
    """$PROMTOOL, promtool on PATH, or the copy check-prometheus.sh unpacked into its cache."""
    if named := os.environ.get("PROMTOOL"):
        return Path(named)
    if on_path := shutil.which("promtool"):
        return Path(on_path)
    cache = Path(
        os.environ.get("XDG_CACHE_HOME") or Path(os.environ.get("HOME", "/tmp")) / ".cache"
    )
    cached = cache / "sftriggerd-tools" / "promtool"
    return cached if cached.is_file() and os.access(cached, os.X_OK) else None
