"""Build-time metadata: the `emulator` extra names the emulator package of this clone.

The emulator (emulator/ here) is a distribution of its own and is not on any package index, so
the extra points at the clone's copy by file URL. Building a wheel from the sdist (what
`python -m build` does) happens in a temporary directory without emulator/; the sdist's
PKG-INFO still holds the URL worked out from the clone, and that one is kept. The URL is
the builder's path: such a wheel installs the extra on the machine that holds that clone, and
is not meant for a public index (sftriggerd is not published on one).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hatchling.metadata.plugin.interface import MetadataHookInterface

EMULATOR = "sftriggerd-emulator"
_FROM_PKG_INFO = re.compile(rf"^Requires-Dist: ({EMULATOR} @ [^;\s]+)", re.MULTILINE)


def emulator_requirement(root: Path) -> str | None:
    here = root / "emulator"
    if (here / "pyproject.toml").is_file():
        return f"{EMULATOR} @ {here.resolve().as_uri()}"
    pkg_info = root / "PKG-INFO"
    if pkg_info.is_file():
        found = _FROM_PKG_INFO.search(pkg_info.read_text(encoding="utf-8"))
        if found is not None:
            return found.group(1)
    # Built away from a clone (the container image's builder): no requirement at all. A bare
    # name would let any package index that serves `sftriggerd-emulator` supply it.
    return None


class ExtrasHook(MetadataHookInterface):
    def update(self, metadata: dict[str, Any]) -> None:
        extras: dict[str, list[str]] = {
            name: list(requirements) for name, requirements in self.config["extras"].items()
        }
        requirement = emulator_requirement(Path(self.root))
        extras["emulator"] = [requirement] if requirement else []
        metadata["optional-dependencies"] = extras
