"""docs/operations.md keeps up with what it describes: every metric sftriggerd exposes, and every
file it points operators to."""

from __future__ import annotations

import re

from sftriggerd.metrics import Metrics
from tests.deploy.manifests import ROOT

GUIDE = (ROOT / "docs" / "operations.md").read_text()


def test_every_metric_is_explained() -> None:
    for family in Metrics().registry.collect():
        name = f"{family.name}_total" if family.type == "counter" else family.name
        assert f"`{name}`" in GUIDE, name


def test_every_file_it_names_exists() -> None:
    named = set(
        re.findall(r"`((?:systemd|deploy|docs|config)/[\w./-]+|Dockerfile|\.dockerignore)`", GUIDE)
    )
    assert len(named) >= 10
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing
