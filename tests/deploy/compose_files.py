"""Reading deploy/compose/ for the tests in this folder: the compose file, the files its
services mount, the commands they run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.manifests import DEPLOY, ROOT, dockerfile_instructions

COMPOSE_DIR = DEPLOY / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
EMULATOR_DOCKERFILE = COMPOSE_DIR / "emulator.Dockerfile"
# Compose's `${NAME}` and `${NAME:-default}` (`$$` is a literal dollar).
_INTERPOLATION = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def interpolated(text: str) -> str:
    """The value compose uses when none of the variables is set in the shell."""
    return _INTERPOLATION.sub(lambda m: m.group(2) or "", text)


def bind_mounts(service: dict[str, Any]) -> list[tuple[Path, str]]:
    """(host path, container path) of each bind mount; named volumes are left out."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append(((COMPOSE_DIR / source).resolve(), target))
    return mounts


def mount_target(service: str, host_path: Path) -> str:
    targets = [target for source, target in bind_mounts(SERVICES[service]) if source == host_path]
    assert targets, f"{service} does not mount {host_path.relative_to(ROOT)}"
    return targets[0]


def emulator_command() -> list[str]:
    instructions = dockerfile_instructions(EMULATOR_DOCKERFILE.read_text())
    cmd = [args for key, args in instructions if key == "CMD"][-1]
    command: list[str] = yaml.safe_load(cmd)
    return command


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def daemon_environ() -> dict[str, str]:
    """The daemon container's environment, as compose sets it."""
    environment = SERVICES["sftriggerd"]["environment"]
    return {key: interpolated(str(value)) for key, value in environment.items()}


def daemon_settings_text() -> str:
    target = mount_target("sftriggerd", COMPOSE_DIR / "sftriggerd.yaml")
    assert target == "/etc/sftriggerd/config.yaml", "where the image's CMD reads its config"
    return (COMPOSE_DIR / "sftriggerd.yaml").read_text()
