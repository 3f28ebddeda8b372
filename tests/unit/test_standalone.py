"""The repository stands alone: no tracked file points at notes that a clone does not have."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Built from parts so this file does not match itself.
FORBIDDEN = ("../" + "shared", "CONTRACT" + " §", "DESIGN" + ".md", "cometd" + "-spike")


def _tracked_text_files() -> list[Path]:
    listing = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    names = [name for name in listing.decode().split("\0") if name]
    return [ROOT / name for name in names if (ROOT / name).is_file()]


def test_the_file_list_is_read() -> None:
    files = _tracked_text_files()
    assert ROOT / "README.md" in files
    assert len(files) > 100


def test_no_tracked_file_points_outside_the_repository() -> None:
    offenders = []
    for path in _tracked_text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        offenders.extend(
            f"{path.relative_to(ROOT)}: {needle}" for needle in FORBIDDEN if needle in text
        )
    assert offenders == []
