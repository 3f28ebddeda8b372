"""deploy/compose/compose.yaml's services as local processes, without a Docker engine: the
commands the containers run (the emulator image's CMD, the receiver's and `changes`' commands,
the daemon image's CMD with the mounted config and the compose environment), with each service
name turned into 127.0.0.1 and each port into a free one. The receiver prints deliveries that
came by Pub/Sub, CometD and polling, so the config reaches the services the way compose wires
them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.acceptance.cli import free_port, sftriggerd_command
from tests.deploy.compose_files import (
    COMPOSE_DIR,
    SERVICES,
    daemon_environ,
    emulator_command,
    interpolated,
    option,
)

_WAYS = ("pubsub", "cometd", "polling")


class Local:
    """Where each service's address of the compose network is on this machine."""

    def __init__(self, tmp_path: Path) -> None:
        emulator = emulator_command()
        receiver = SERVICES["receiver"]["command"]
        listen_port = SERVICES["sftriggerd"]["environment"]["SFTRIGGERD_LISTEN"].rpartition(":")[2]
        self.tmp_path = tmp_path
        self.ports = {
            ("emulator", option(emulator, "--port")): str(free_port()),
            ("emulator", option(emulator, "--pubsub-port")): str(free_port()),
            ("receiver", option(receiver, "--port")): str(free_port()),
            ("sftriggerd", listen_port): str(free_port()),
        }

    def address(self, text: str) -> str:
        for (service, port), local in self.ports.items():
            text = text.replace(f"{service}:{port}", f"127.0.0.1:{local}")
        return text

    def command(self, service: str, args: list[str]) -> list[str]:
        local = [self.address(arg).replace("0.0.0.0", "127.0.0.1") for arg in args]
        for flag in ("--port", "--pubsub-port"):
            if flag in local:
                index = local.index(flag) + 1
                local[index] = self.ports[(service, local[index])]
        if "--state" in local:
            local[local.index("--state") + 1] = str(self.tmp_path / "org")
        return local

    def config(self) -> Path:
        text = self.address((COMPOSE_DIR / "sftriggerd.yaml").read_text())
        text = text.replace("sqlite:////var/lib/sftriggerd/", f"sqlite:///{self.tmp_path}/")
        path = self.tmp_path / "config.yaml"
        path.write_text(text)
        return path


class Output:
    """A process's output lines, read as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()

    def wait_for(self, found: Callable[[list[str]], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while not found(self.lines):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(left)
        return True

    def text(self) -> str:
        self._thread.join(timeout=30)
        return "".join(self.lines)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[dict[str, tuple[subprocess.Popen[str], Output]]]:
    local = Local(tmp_path)
    python_module = [sys.executable, "-m"]
    secret_env = {
        "WEBHOOK_SECRET": interpolated(SERVICES["receiver"]["environment"]["WEBHOOK_SECRET"])
    }
    daemon_env = {**daemon_environ()}
    daemon_env["SFTRIGGERD_LISTEN"] = local.address(
        daemon_env["SFTRIGGERD_LISTEN"].replace("0.0.0.0", "sftriggerd")
    )
    commands = {
        "emulator": ([*sftriggerd_command(), *local.command("emulator", emulator_command())], {}),
        "receiver": (
            [
                *python_module,
                "sftriggerd_emulator.demo",
                *local.command("receiver", SERVICES["receiver"]["command"]),
            ],
            secret_env,
        ),
        "sftriggerd": ([*sftriggerd_command(), "run", "--config", str(local.config())], daemon_env),
        "changes": (
            [
                *python_module,
                "sftriggerd_emulator.demo",
                *local.command("changes", SERVICES["changes"]["command"]),
            ],
            {},
        ),
    }
    running: dict[str, tuple[subprocess.Popen[str], Output]] = {}
    try:
        for name, (command, env) in commands.items():
            process = subprocess.Popen(
                command,
                env={**os.environ, **env},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            running[name] = (process, Output(process))
            if name in ("emulator", "receiver"):
                # compose starts the daemon once these two are healthy.
                assert running[name][1].wait_for(
                    lambda lines: any("listening" in line for line in lines), 60
                )
        yield running
    finally:
        for process, output in reversed(running.values()):
            if process.poll() is None:
                process.kill()
                process.wait()
            output.text()  # the reader has seen the end of the pipe
            assert process.stdout is not None
            process.stdout.close()


def test_the_services_deliver_by_every_way_and_stop_on_sigterm(
    started: dict[str, tuple[subprocess.Popen[str], Output]],
) -> None:
    _, received = started["receiver"]

    def every_way(lines: list[str]) -> bool:
        delivered = [line for line in lines if line.rstrip().endswith("signature ok")]
        return all(any(f"via {way}" in line for line in delivered) for way in _WAYS)

    # Well inside the test timeout (120 s), so a failure shows every output.
    arrived = received.wait_for(every_way, 60)
    for process, _ in reversed(started.values()):
        process.send_signal(signal.SIGTERM)
    for process, _ in started.values():
        process.wait(timeout=30)
    outputs = {name: output.text() for name, (_, output) in started.items()}
    assert arrived, outputs
    for name, (process, _) in started.items():
        # The emulator has no SIGTERM handler: it ends by the signal, as its container does.
        expected = -signal.SIGTERM if name == "emulator" else 0
        assert process.returncode == expected, (name, outputs[name])
        assert "Traceback" not in outputs[name], (name, outputs[name])
    assert re.search(r"account\.\w+ .* via pubsub .* signature ok", outputs["receiver"])
