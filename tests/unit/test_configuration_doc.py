"""docs/configuration.md and config/sftriggerd.example.yaml follow the settings model.

The keys are read from the pydantic model itself (nested sections, lists of sections), so a
key added to the model fails here until both files describe it, and a key the doc names that
the model does not have fails too.
"""

from __future__ import annotations

import re
import types
import typing
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from sftriggerd.config.durations import format_duration, parse_duration
from sftriggerd.config.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"
EXAMPLE = ROOT / "config" / "sftriggerd.example.yaml"

# A key path as the doc writes it: `endpoints[].retry.schedule`, `salesforce.auth.flow`.
# The sections come from the model, so a new section is looked for too.
_SECTIONS = "|".join(Settings.model_fields)
_DOC_PATH = re.compile(rf"`((?:{_SECTIONS})(?:\[\])?(?:\.[a-z_]+(?:\[\])?)*)`")
# A YAML key at the start of a line, after an optional list dash: `  - name: x`, `url: y`.
_YAML_KEY = re.compile(r"^(?P<indent> *)(?P<dash>- +)?(?P<key>[A-Za-z_][A-Za-z0-9_]*):(?: |$)")


def _models_in(annotation: object) -> tuple[list[type[BaseModel]], bool]:
    """The settings sections an annotation holds, and whether it holds them in a list."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation], False
    origin = typing.get_origin(annotation)
    found: list[type[BaseModel]] = []
    listed = origin in (tuple, list)
    for argument in typing.get_args(annotation):
        models, inner_listed = _models_in(argument)
        found.extend(models)
        listed = listed or inner_listed
    if origin not in (tuple, list, typing.Union, types.UnionType, typing.Annotated):
        return [], False  # a dict of free keys (headers) is one value, not a section
    return found, listed and bool(found)


def model_paths(model: type[BaseModel] = Settings, prefix: str = "") -> dict[str, bool]:
    """Every key path of the model -> whether it is a leaf (a value, not a section)."""
    paths: dict[str, bool] = {}
    for name, field in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        models, listed = _models_in(field.annotation)
        if not models:
            paths[path] = True
            continue
        paths[path] = False
        if listed:
            paths[f"{path}[]"] = False  # an item of the list: `triggers[]`
        for section in models:
            paths.update(model_paths(section, f"{path}[]" if listed else path))
    return paths


def model_fields(model: type[BaseModel] = Settings, prefix: str = "") -> dict[str, FieldInfo]:
    """Every leaf key path of the model -> its pydantic field."""
    fields: dict[str, FieldInfo] = {}
    for name, field in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        models, listed = _models_in(field.annotation)
        if not models:
            fields[path] = field
        for section in models:
            fields.update(model_fields(section, f"{path}[]" if listed else path))
    return fields


def render_default(value: object) -> str:
    """A default as the doc writes it: `7d`, `[5s, 30s]`, `false`, `0.5`."""
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(render_default(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def doc_defaults(text: str) -> dict[str, str]:
    """The default column of each table row that starts with a key path."""
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]*) \|", text, re.MULTILINE)
    return {path: cell.strip() for path, cell in rows}


def _canonical(shown: str) -> str:
    """Durations as `render_default` writes them, so `60s` and `1m` compare equal."""

    def one(token: str) -> str:
        try:
            return format_duration(parse_duration(token))
        except ValueError:
            return token

    if shown.startswith("[") and shown.endswith("]"):
        return "[" + ", ".join(one(item.strip()) for item in shown[1:-1].split(",")) + "]"
    return one(shown)


def default_problem(field: FieldInfo, cell: str) -> str | None:
    if field.is_required():
        return None if cell == "required" else f"is required, the doc says {cell!r}"
    default = field.get_default(call_default_factory=True)
    unset = default is None or default == () or default == {}
    if cell.startswith(("none", "all ")):
        return None if unset else f"defaults to {render_default(default)!r}, the doc says {cell!r}"
    literal = re.search(r"`([^`]*)`", cell)
    shown = _canonical(literal.group(1).strip('"') if literal else cell)
    if isinstance(default, SecretStr) or render_default(default) != shown:
        return f"defaults to {render_default(default)!r}, the doc says {cell!r}"
    return None


def doc_paths(text: str) -> set[str]:
    return {match.group(1) for match in _DOC_PATH.finditer(text)}


def yaml_paths(text: str, commented: bool = True) -> set[str]:
    """The key paths a YAML file shows; with `commented`, commented-out keys
    (`# key: value`, at the column of their `#`) count too."""
    stack: list[tuple[int, str]] = []  # (column of a key or a list dash, its path)
    found: set[str] = set()
    for raw_line in text.splitlines():
        line = raw_line
        stripped = line.lstrip(" ")
        if stripped.startswith("#"):
            if not commented:
                continue
            line = " " * (len(line) - len(stripped)) + stripped[1:].removeprefix(" ")
        match = _YAML_KEY.match(line)
        if match is None:
            continue
        indent = len(match["indent"])
        if match["dash"]:
            # A new item of a list: its keys sit under `parent[]`.
            _pop_to(stack, indent)
            stack.append((indent, f"{stack[-1][1] if stack else ''}[]"))
        column = indent + len(match["dash"] or "")
        _pop_to(stack, column)
        parent = stack[-1][1] if stack else ""
        path = f"{parent}.{match['key']}" if parent else match["key"]
        stack.append((column, path))
        found.add(path)
    return found


def _pop_to(stack: list[tuple[int, str]], column: int) -> None:
    while stack and stack[-1][0] >= column:
        stack.pop()


def test_the_model_walk_sees_nested_and_listed_sections() -> None:
    paths = model_paths()
    assert paths["endpoints[].retry.schedule"] is True
    assert paths["salesforce.auth"] is False
    assert paths["triggers[].name"] is True
    assert paths["endpoints[].headers"] is True  # a dict of free keys is a value


def test_the_yaml_reader_sees_lists_nesting_and_commented_keys() -> None:
    text = (
        "a:\n  b: 1\n  # c: 2\nitems:\n  - name: x\n    deep:\n      k: 1\n"
        "  - name: y\n    # other: 3\n"
    )
    assert yaml_paths(text) == {
        "a",
        "a.b",
        "a.c",
        "items",
        "items[].name",
        "items[].deep",
        "items[].deep.k",
        "items[].other",
    }


def test_every_key_of_the_model_is_documented() -> None:
    documented = doc_paths(DOC.read_text())
    missing = sorted(
        path for path, leaf in model_paths().items() if leaf and path not in documented
    )
    assert not missing, f"docs/configuration.md does not describe: {missing}"


def test_the_defaults_in_the_doc_are_the_models() -> None:
    cells = doc_defaults(DOC.read_text())
    problems = {
        path: problem
        for path, field in model_fields().items()
        if path in cells and (problem := default_problem(field, cells[path])) is not None
    }
    assert problems == {}
    assert len(cells) >= len(model_fields())  # every key has a row with its default


def test_a_wrong_default_in_the_doc_is_caught() -> None:
    fields = model_fields()
    assert default_problem(fields["store.retention"], "`7d`") is None
    assert default_problem(fields["store.retention"], "`8d`") is not None
    assert default_problem(fields["store.retention"], "`168h`") is None
    assert default_problem(fields["triggers[].verify_after"], "`30m`") is not None
    assert default_problem(fields["triggers[].events"], "none") is not None
    assert default_problem(fields["endpoints[].url"], "`x`") is not None


def test_the_doc_names_no_key_the_model_lacks() -> None:
    known = set(model_paths())
    unknown = sorted(doc_paths(DOC.read_text()) - known)
    assert not unknown, f"docs/configuration.md names keys the settings do not have: {unknown}"


def test_every_key_of_the_model_is_in_the_example() -> None:
    shown = yaml_paths(EXAMPLE.read_text())
    missing = sorted(path for path, leaf in model_paths().items() if leaf and path not in shown)
    assert not missing, f"config/sftriggerd.example.yaml does not show: {missing}"


def test_the_example_shows_no_key_the_model_lacks() -> None:
    paths = model_paths()
    values = [path for path, leaf in paths.items() if leaf]
    # Keys under a value (the names of `headers`) are the user's own, not settings. Only
    # keys in force count here: a comment may say `note:` without naming a setting.
    unknown = sorted(
        path
        for path in yaml_paths(EXAMPLE.read_text(), commented=False)
        if path not in paths and not any(path.startswith(f"{value}.") for value in values)
    )
    assert not unknown, f"the example shows keys the settings do not have: {unknown}"
