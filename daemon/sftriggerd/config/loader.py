"""Reads the YAML file into plain data, expanding `${...}` references, remembering lines.

Every value is built from PyYAML's node tree rather than `safe_load`, so each YAML path knows
its line (for messages) and duplicate keys are caught instead of silently overwritten.

The text is outside input, and whatever it holds becomes a problem, never an exception: a
syntax error, a scalar its tag cannot build (`2001-13-45`, `!!int`), a lone surrogate, an
alias bomb (anchors that expand to billions of values are refused after MAX_VALUES), an alias
to itself or nesting deeper than MAX_DEPTH.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from .files import read_small_text

# `$${...}` is a literal `${...}`; `${NAME}`, `${NAME:-default}` and `${file:/path}` expand.
_REFERENCE = re.compile(r"\$(\$)?\{([^}]*)\}")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

YamlPath = tuple[str | int, ...]
# For a path whose `${...}` cannot be resolved: the text to use instead, or None when that
# is a problem (the default everywhere).
StandIn = Callable[[YamlPath], str | None]

# Far more than any real configuration holds, far less than an alias bomb expands to.
MAX_VALUES = 100_000
MAX_DEPTH = 64
_FLOW_BRACKET = re.compile(r"[\[\]{}]")
_MERGE_TAG = "tag:yaml.org,2002:merge"
# What PyYAML's scalar constructors raise on text their tag cannot build.
_SCALAR_ERRORS = (yaml.YAMLError, ValueError, TypeError, IndexError, AttributeError, OverflowError)


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
    # Paths whose references could not be resolved and were given their stand-in.
    stood_in: list[YamlPath] = field(default_factory=list)

    def line_of(self, path: YamlPath) -> int | None:
        """The line of the deepest part of `path` that exists in the file."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None


def load_yaml(
    text: str, environ: Mapping[str, str] | None = None, stand_in: StandIn | None = None
) -> LoadedYaml:
    """Parses `text`; every fault is a problem in the result, never an exception. Where
    `stand_in` gives a text for a path, a reference there that cannot be resolved makes the
    whole value that text instead of a problem (for commands that do not read the value)."""
    env = os.environ if environ is None else environ
    loaded = LoadedYaml(data=None)
    if _flow_depth(text) > MAX_DEPTH:
        # PyYAML's scanner slows down with every open bracket (seconds for a thousand).
        loaded.problems.append(((), f"not valid YAML: nested deeper than {MAX_DEPTH} levels"))
        return loaded
    try:
        root = _compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        loaded.problems.append(((), printable(f"not valid YAML: {problem}{where}")))
        return loaded
    except RecursionError:
        loaded.problems.append(((), f"not valid YAML: nested deeper than {MAX_DEPTH} levels"))
        return loaded
    if root is not None:
        try:
            loaded.data = _Builder(loaded, env, stand_in).build(root, (), 0)
        except _TooLarge as exc:
            loaded.data = None
            loaded.problems[:] = [((), str(exc))]
    return loaded


def _flow_depth(text: str) -> int:
    """How deep `[` and `{` nest, counted as if none were quoted: an upper bound."""
    depth = deepest = 0
    for match in _FLOW_BRACKET.finditer(text):
        depth = depth + 1 if match.group() in "[{" else max(depth - 1, 0)
        deepest = max(deepest, depth)
    return deepest


def _compose(text: str) -> yaml.Node | None:
    loader = yaml.SafeLoader(text)
    try:
        node: yaml.Node | None = loader.get_single_node()
        return node
    finally:
        loader.dispose()


class _TooLarge(Exception):
    """The document expands past MAX_VALUES or MAX_DEPTH: nothing of it is used."""


def printable(text: str) -> str:
    """`text` with anything that cannot be written as UTF-8 (lone surrogates) escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _Builder:
    def __init__(
        self, loaded: LoadedYaml, env: Mapping[str, str], stand_in: StandIn | None = None
    ) -> None:
        self._loaded = loaded
        self._env = env
        self._stand_in = stand_in
        self._constructor = yaml.constructor.SafeConstructor()
        self._values = 0

    def build(self, node: yaml.Node, path: YamlPath, depth: int) -> Any:
        self._values += 1
        if self._values > MAX_VALUES:
            raise _TooLarge(
                f"the file expands to more than {MAX_VALUES} values"
                " (anchors and aliases repeat what they point to)"
            )
        if depth > MAX_DEPTH:
            raise _TooLarge(f"the file nests deeper than {MAX_DEPTH} levels (or an alias loops)")
        self._loaded.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            return self._build_mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self._build_scalar(node, path)

    def _build_scalar(self, node: yaml.Node, path: YamlPath) -> Any:
        try:
            value = self._constructor.construct_object(node)  # int, float, bool, null, str...
        except _SCALAR_ERRORS:
            shown = str(node.value)[:40]
            self._problem(path, f"'{shown}' is not a valid {node.tag.rpartition(':')[2]}")
            return None
        if isinstance(value, str):
            if not _is_utf8(value):
                self._problem(path, "holds a lone surrogate, which is not text")
                return None
            if "$" in value:
                return self._expand(value, path)
        return value

    def _build_mapping(self, node: yaml.MappingNode, path: YamlPath, depth: int) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged = {**self._merge(value_node, path, depth), **merged}
                continue
            key = self._key(key_node, path)
            if key is None:
                continue
            child = (*path, key)
            self._loaded.lines[child] = key_node.start_mark.line + 1
            if key in result:
                self._problem(child, "duplicate key")
                continue
            result[key] = self.build(value_node, child, depth + 1)
        return {**merged, **result}

    def _merge(self, node: yaml.Node, path: YamlPath, depth: int) -> dict[str, Any]:
        """`<<: *base` or `<<: [*a, *b]`: the mappings' keys, the first one's winning."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in sources:
            built = (
                self.build(source, path, depth + 1)
                if isinstance(source, yaml.MappingNode)
                else None
            )
            if not isinstance(built, dict):
                self._problem(path, "a merge key (<<) takes a mapping or a list of mappings")
                continue
            merged = {**built, **merged}
        return merged

    def _key(self, node: yaml.Node, path: YamlPath) -> str | None:
        if not isinstance(node, yaml.ScalarNode):
            self._problem(path, "a key must be plain text, not a list or mapping")
            return None
        try:
            key = self._constructor.construct_object(node)
        except _SCALAR_ERRORS:
            key = node.value
        text = key if isinstance(key, str) else str(key)
        if not _is_utf8(text):
            self._problem(path, "a key holds a lone surrogate, which is not text")
            return None
        return text

    def _problem(self, path: YamlPath, message: str) -> None:
        self._loaded.problems.append((path, printable(message)))

    def _expand(self, value: str, path: YamlPath) -> str:
        stand_in = self._stand_in(path) if self._stand_in is not None else None
        unresolved: list[str] = []

        def replace(match: re.Match[str]) -> str:
            if match.group(1):
                return "${" + match.group(2) + "}"
            try:
                return resolve_reference(match.group(2), self._env)
            except ValueError as exc:
                unresolved.append(str(exc))
                return ""

        expanded = _REFERENCE.sub(replace, value)
        if unresolved and stand_in is not None:
            self._loaded.stood_in.append(path)
            return stand_in
        for message in unresolved:
            self._problem(path, message)
        if not _is_utf8(expanded):
            self._problem(path, "a reference expands to a lone surrogate, which is not text")
            return ""
        return expanded


def resolve_reference(reference: str, env: Mapping[str, str]) -> str:
    """The text a `${reference}` stands for; ValueError names what is missing."""
    if reference.startswith("file:"):
        try:
            # Secret files often end in a newline that is not part of the secret.
            return read_small_text(reference.removeprefix("file:")).rstrip("\r\n")
        except ValueError as exc:
            raise ValueError(f"cannot read ${{{reference}}}: {exc}") from exc
    name, has_default, default = reference.partition(":-")
    if not _VARIABLE.fullmatch(name):
        raise ValueError(f"${{{reference}}} is not a valid reference")
    if name in env:
        return env[name]
    if has_default:
        return default
    raise ValueError(f"environment variable {name} is not set (referenced as ${{{name}}})")
