"""Reading the deployment files for the tests in this folder."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
DOCKERFILE = ROOT / "Dockerfile"

Resource = dict[str, Any]


def yaml_documents(path: Path) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def resources_under(folder: Path) -> list[tuple[Path, Resource]]:
    return [(path, doc) for path in sorted(folder.rglob("*.yaml")) for doc in yaml_documents(path)]


def by_kind(folder: Path) -> dict[str, Resource]:
    """The resources of one folder by kind; each kind appears once per variant."""
    found: dict[str, Resource] = {}
    for path, doc in resources_under(folder):
        assert doc["kind"] not in found, f"{path}: a second {doc['kind']}"
        found[doc["kind"]] = doc
    return found


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), " ".join(arguments.split())))
        pending = ""
    return instructions


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path, or one of its parents, decides."""

    def matches(pattern: str, candidate: str) -> bool:
        regex = re.escape(pattern.strip("/"))
        regex = regex.replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        return re.fullmatch(regex, candidate) is not None

    parts = Path(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if any(matches(pattern.removeprefix("!"), c) for c in candidates):
            ignored = not negated
    return ignored
