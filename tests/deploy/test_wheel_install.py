"""The install instructions, followed: sftriggerd is not on PyPI, so operators build a wheel from
a clone (`python -m build`, or `pip wheel .`) and install it into a virtual environment of its
own. This builds the wheel, installs it into a fresh venv (its dependencies from the package
index, as an operator's pip gets them) and runs the installed command away from the clone."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.deploy.manifests import ROOT
from tests.unit.test_config import EXAMPLE_ENV, example_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert result.returncode == 0, f"{command}: {result.stdout}\n{result.stderr}"
    return result.stdout


def build_wheel(out_dir: Path) -> Path:
    """`python -m build --wheel` where `build` is installed, else `pip wheel . --no-deps`: the
    two ways the README gives."""
    if importlib.util.find_spec("build") is not None:
        run(sys.executable, "-m", "build", "--wheel", "--outdir", out_dir, ROOT, cwd=ROOT)
    else:
        run(
            sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", out_dir, ".", cwd=ROOT
        )
    (wheel,) = out_dir.glob("sftriggerd-*.whl")
    return wheel


def away_from_the_clone() -> dict[str, str]:
    """The environment without anything that would import sftriggerd from the clone."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH",)}
    env.pop("VIRTUAL_ENV", None)
    return env


def test_the_built_wheel_installs_into_a_fresh_venv_and_runs(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    assert "sftriggerd/__init__.py" in names and "sftriggerd/py.typed" in names
    assert not any(name.startswith(("tests/", "daemon/")) for name in names)
    # The emulator and the demo are a package of their own, the `emulator` extra.
    assert not any("emulator" in name.split("/")[0] for name in names), names
    assert not any(name.startswith(("sftriggerd/emulator/", "sftriggerd/demo/")) for name in names)
    entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    assert "sftriggerd = sftriggerd.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()

    venv = tmp_path / "venv"
    env = away_from_the_clone()
    # A venv of the interpreter the tests run on; pip from the test venv installs into it.
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "-q", wheel, cwd=tmp_path)

    command = venv / "bin" / "sftriggerd"
    assert "check-config" in run(command, "--help", cwd=tmp_path, env=env)
    imported = run(
        python, "-c", "import sftriggerd; print(sftriggerd.__file__)", cwd=tmp_path, env=env
    )
    assert Path(imported.strip()).is_relative_to(venv), "imported from the clone, not the wheel"
    # The installed command reads and checks a real configuration (the example, its key in place).
    config = example_config(tmp_path)
    checked = run(command, "check-config", "--config", config, cwd=tmp_path, env=env | EXAMPLE_ENV)
    assert ": ok (2 triggers, 1 endpoints, store sqlite)" in checked

    # Without the extra, the demo says how to get the emulator instead of failing on an import.
    demo = subprocess.run(
        [str(command), "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert demo.returncode == 1, demo.stderr
    assert "pip install '.[emulator]'" in demo.stderr and "Traceback" not in demo.stderr


def test_the_emulator_extra_of_a_wheel_built_through_its_sdist(tmp_path: Path) -> None:
    """`python -m build` builds the wheel from the sdist in a temporary directory; the wheel's
    `emulator` extra still names this clone's emulator, so `wheel[emulator]` installs it."""
    out_dir = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--outdir", out_dir, ROOT, cwd=ROOT)
    (wheel,) = out_dir.glob("sftriggerd-*.whl")
    venv = tmp_path / "venv"
    env = away_from_the_clone()
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    extra = f"{wheel}[emulator]"
    run(sys.executable, "-m", "pip", "--python", python, "install", "-q", extra, cwd=tmp_path)

    command = venv / "bin" / "sftriggerd"
    assert "--port" in run(command, "emulator", "--help", cwd=tmp_path, env=env)
    located = run(
        python, "-c", "import sftriggerd_emulator as e; print(e.__file__)", cwd=tmp_path, env=env
    )
    assert Path(located.strip()).is_relative_to(venv), "the emulator was not installed"


def test_a_wheel_built_away_from_the_clone_names_no_emulator_to_fetch(tmp_path: Path) -> None:
    """The container image's builder has only the daemon's sources: its wheel's `emulator`
    extra must require nothing, or any package index serving that name could supply it."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "hatch_build.py"):
        shutil.copy(ROOT / name, source / name)
    skip_caches = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "daemon", source / "daemon", ignore=skip_caches)
    out_dir = tmp_path / "dist"
    pip_wheel = (sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "--wheel-dir", out_dir)
    run(*pip_wheel, source, cwd=tmp_path)
    (wheel,) = out_dir.glob("sftriggerd-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(next(n for n in archive.namelist() if n.endswith("/METADATA")))
    assert b"Provides-Extra: emulator" in metadata
    assert b"Requires-Dist: sftriggerd-emulator" not in metadata
