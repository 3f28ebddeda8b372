"""Configuration: one YAML file, parsed once into frozen, typed settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ..errors import ConfigError
from . import inspection
from .files import read_small_text
from .loader import LoadedYaml, YamlPath, format_path, load_yaml, printable
from .rules import cross_field_problems
from .settings import Settings

__all__ = ["Settings", "load_settings", "parse_settings"]


def load_settings(
    path: Path, environ: Mapping[str, str] | None = None, inspect_only: bool = False
) -> Settings:
    """Reads and validates the file; raises ConfigError listing every problem found.
    `inspect_only`: for commands that read the store only, which need no secrets
    (`inspection` says which references may stay unresolved)."""
    try:
        text = read_small_text(path)
    except ValueError as exc:
        raise ConfigError([printable(f"cannot read {path}: {exc}")]) from exc
    return parse_settings(text, source=str(path), environ=environ, inspect_only=inspect_only)


def parse_settings(
    text: str,
    source: str = "<config>",
    environ: Mapping[str, str] | None = None,
    inspect_only: bool = False,
) -> Settings:
    stand_in = inspection.stand_in if inspect_only else None
    loaded = load_yaml(text, os.environ if environ is None else environ, stand_in)
    inspection.settle(loaded.data, loaded.stood_in)
    problems: dict[YamlPath, list[str]] = {}
    for path, message in loaded.problems:
        problems.setdefault(path, []).append(message)
    if not problems.get(()):
        if not isinstance(loaded.data, dict):
            problems.setdefault((), []).append("the file must be a mapping of sections")
        else:
            _collect_validation(loaded, problems)
    if problems:
        raise ConfigError(_format(loaded, problems, source), source)
    return Settings.model_validate(loaded.data)


def _collect_validation(loaded: LoadedYaml, problems: dict[YamlPath, list[str]]) -> None:
    # A path whose `${...}` failed to expand already has its real problem; more would be noise.
    expanded_badly = set(problems)
    try:
        Settings.model_validate(loaded.data)
    except ValidationError as exc:
        for error in exc.errors(include_input=False, include_url=False):
            path = _written_path(loaded.data, tuple(error["loc"]))
            if path not in expanded_badly:
                problems.setdefault(path, []).append(_message(error))
    for path, message in cross_field_problems(loaded.data):
        if message not in problems.get(path, []) and path not in expanded_badly:
            problems.setdefault(path, []).append(message)
    # "field required" from the flow rules repeats pydantic's own for the same key.
    for messages in problems.values():
        if "field required" in messages and any(m.startswith("field required ") for m in messages):
            messages.remove("field required")


def _written_path(data: object, path: YamlPath) -> YamlPath:
    """`path` as the file wrote it: a value that may be one item or a list of them (an
    endpoint's `secret`) is validated as a list, so a fault in the one-item form would
    otherwise be reported at `[0]` of a scalar."""
    node = data
    for depth, part in enumerate(path):
        if isinstance(node, str) and isinstance(part, int):
            return path[:depth]
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return path
    return path


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "missing":
        return "field required"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "value_error":
        return str(error.get("ctx", {}).get("error", error["msg"]))
    message = error["msg"]
    return message[:1].lower() + message[1:]


def _format(loaded: LoadedYaml, problems: dict[YamlPath, list[str]], source: str) -> list[str]:
    lines: list[tuple[int, str]] = []
    for path, messages in problems.items():
        line = loaded.line_of(path) or 0
        where = f"{source}:{line}: " if line else f"{source}: "
        lines.extend((line, f"{where}{format_path(path)}: {message}") for message in messages)
    return [text for _, text in sorted(lines, key=lambda pair: pair[0])]
