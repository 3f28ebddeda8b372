"""Runs a script of benchmarks/ as its README says, with the packages of this checkout on
its path: for the tests that check each benchmark still runs end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sftriggerd
import sftriggerd_emulator

ROOT = Path(__file__).parents[2]


def run_benchmark(
    script: str,
    *args: str,
    timeout_s: float = 120,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """`python benchmarks/SCRIPT ARGS`; `env`: variables beside the process's own."""
    packages = [Path(p.__file__).parents[1] for p in (sftriggerd, sftriggerd_emulator)]
    path = {"PYTHONPATH": os.pathsep.join(map(str, packages))}
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        env={**os.environ, **path, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
