"""How long `make demo` takes on a fresh clone, from the command to its first printed delivery.

    python3 benchmarks/demo_first_delivery.py [--repo .] [--keep]

Clones the repository's committed HEAD into a temporary directory (no `.venv`, nothing
installed), runs `make demo` there and times three moments: the virtual environment ready
(the `sftriggerd demo` banner), the first delivery printed ("signature ok"), and the exit
after Ctrl-C. pip fetches the runtime dependencies from the package index this machine is
configured for, so the figure includes that download. No assertions: figures for people.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--keep", action="store_true", help="keep the clone for a look")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="sftriggerd-demo-"))
    clone = scratch / "sftriggerd"
    subprocess.run(["git", "clone", "--quiet", str(args.repo), str(clone)], check=True)
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    env["PYTHONUNBUFFERED"] = "1"

    started = time.monotonic()
    process = subprocess.Popen(
        ["make", "demo"],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    banner = first = None
    lines: list[str] = []
    assert process.stdout is not None
    try:
        for line in process.stdout:
            lines.append(line)
            now = time.monotonic() - started
            if banner is None and "admin     http://" in line:
                banner = now
            if "signature ok" in line:
                first = now
                break
            if now > args.timeout:
                break
        os.killpg(process.pid, signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
        lines.append(rest)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    stopped = time.monotonic() - started

    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(f"installed and demo started:  {banner:.1f} s" if banner else "no demo banner seen")
    print(f"first delivery printed:      {first:.1f} s" if first else "no delivery printed")
    clean = "demo stopped" in "".join(lines)
    print(f"stopped after Ctrl-C:        {stopped:.1f} s ({'clean' if clean else 'NOT clean'})")
    if first is None:
        print("".join(lines)[-4000:])
    if args.keep:
        print(f"clone kept at {clone}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0 if first is not None else 1


if __name__ == "__main__":
    raise SystemExit(main())
