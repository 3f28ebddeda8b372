"""The test suite's own rules: one support plugin, loaded by the root conftest, defines every
shared fixture once; no other conftest exists and no test module imports from one."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEST_DIRS = [ROOT / "tests", ROOT / "emulator" / "tests"]
SHARED = {"store", "http", "receiver", "emulator", "emulator_settings", "org", "serve"}


def suite_files() -> list[Path]:
    return [path for folder in TEST_DIRS for path in folder.rglob("*.py")]


def fixture_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(target, ast.Attribute) and target.attr == "fixture":
                    names.add(node.name)
    return names


def test_the_root_conftest_is_the_only_one_and_loads_the_plugin() -> None:
    conftests = sorted(
        str(path.relative_to(ROOT)) for folder in TEST_DIRS for path in folder.rglob("conftest.py")
    )
    assert conftests == []
    assert 'pytest_plugins = ["tests.support.plugin"]' in (ROOT / "conftest.py").read_text()


def test_no_module_imports_from_a_conftest() -> None:
    offenders = []
    for path in suite_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and "conftest" in (node.module or ""):
                offenders.append(f"{path.relative_to(ROOT)}: from {node.module}")
    assert offenders == []


# Support fixtures a test module may override to shape its emulator.
OVERRIDABLE = {"emulator_settings", "emulator_middlewares"}


def test_shared_fixtures_are_defined_only_in_the_support_plugin() -> None:
    support = ROOT / "tests" / "support"
    defined_elsewhere = []
    for path in suite_files():
        if path.is_relative_to(support):
            continue
        for name in fixture_names(ast.parse(path.read_text())) & SHARED - {
            "emulator_settings",
            "emulator_middlewares",
        }:
            defined_elsewhere.append(f"{path.relative_to(ROOT)}: {name}")
    assert defined_elsewhere == []
