"""Runs the installed `sftriggerd` console script as a subprocess, as operators do."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path


def sftriggerd_command() -> list[str]:
    script = Path(sys.executable).with_name("sftriggerd")
    if script.exists():
        return [str(script)]
    found = shutil.which("sftriggerd")
    return [found] if found else [sys.executable, "-m", "sftriggerd"]


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*sftriggerd_command(), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, **(env or {})},
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
