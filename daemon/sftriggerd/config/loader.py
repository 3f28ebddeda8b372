"""Reads the YAML file into plain data, expanding `${...}` references, remembering lines.

Every value is built from PyYAML's node tree rather than `safe_load`, so each YAML path knows
its line (for messages) and duplicate keys are caught instead of silently overwritten.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# `$${...}` is a literal `${...}`; `${NAME}`, `${NAME:-default}` and `${file:/path}` expand.
_REFERENCE = re.compile(r"\$(\$)?\{([^}]*)\}")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

YamlPath = tuple[str | int, ...]


def format_path(path: YamlPath) -> str:
    """`("triggers", 1, "object")` -> `triggers[1].object`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "(top level)"


@dataclass
class LoadedYaml:
    data: Any
    lines: dict[YamlPath, int] = field(default_factory=dict)
    problems: list[tuple[YamlPath, str]] = field(default_factory=list)

    def line_of(self, path: YamlPath) -> int | None:
        """The line of the deepest part of `path` that exists in the file."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None


def load_yaml(text: str, environ: Mapping[str, str] | None = None) -> LoadedYaml:
    """Parses `text`; syntax errors become a problem at the top level, never an exception."""
    env = os.environ if environ is None else environ
    try:
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        loaded = LoadedYaml(data=None)
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        loaded.problems.append(((), f"not valid YAML: {problem}{where}"))
        return loaded
    loaded = LoadedYaml(data=None)
    if root is not None:
        loaded.data = _Builder(loaded, env).build(root, ())
    return loaded


class _Builder:
    def __init__(self, loaded: LoadedYaml, env: Mapping[str, str]) -> None:
        self._loaded = loaded
        self._env = env
        self._constructor = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, path: YamlPath) -> Any:
        self._loaded.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            return self._build_mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        value = self._constructor.construct_object(node)  # int, float, bool, null, str, ...
        if isinstance(value, str) and "$" in value:
            return self._expand(value, path)
        return value

    def _build_mapping(self, node: yaml.MappingNode, path: YamlPath) -> dict[str, Any]:
        self._constructor.flatten_mapping(node)  # resolves `<<: *anchor` merge keys
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._constructor.construct_object(key_node)
            child = (*path, key if isinstance(key, str) else str(key))
            self._loaded.lines[child] = key_node.start_mark.line + 1
            if child[-1] in result:
                self._loaded.problems.append((child, "duplicate key"))
                continue
            result[str(child[-1])] = self.build(value_node, child)
        return result

    def _expand(self, value: str, path: YamlPath) -> str:
        def replace(match: re.Match[str]) -> str:
            if match.group(1):
                return "${" + match.group(2) + "}"
            try:
                return resolve_reference(match.group(2), self._env)
            except ValueError as exc:
                self._loaded.problems.append((path, str(exc)))
                return ""

        return _REFERENCE.sub(replace, value)


def resolve_reference(reference: str, env: Mapping[str, str]) -> str:
    """The text a `${reference}` stands for; ValueError names what is missing."""
    if reference.startswith("file:"):
        file_path = Path(reference.removeprefix("file:"))
        try:
            # Secret files often end in a newline that is not part of the secret.
            return file_path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ValueError(f"cannot read ${{{reference}}}: {exc.strerror}") from exc
    name, has_default, default = reference.partition(":-")
    if not _VARIABLE.fullmatch(name):
        raise ValueError(f"${{{reference}}} is not a valid reference")
    if name in env:
        return env[name]
    if has_default:
        return default
    raise ValueError(f"environment variable {name} is not set (referenced as ${{{name}}})")
