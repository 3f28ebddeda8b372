"""`sftriggerd run` as a subprocess: serves health and metrics, stops cleanly on SIGTERM."""

import json
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.acceptance.cli import free_port, run_cli, sftriggerd_command


def wait_for(url: str, deadline_s: float = 20) -> tuple[int, bytes]:
    end = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status, response.read()
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def write_config(tmp_path: Path, port: int) -> Path:
    config = tmp_path / "sftriggerd.yaml"
    config.write_text(
        f"""
salesforce:
  auth: {{client_id: c, client_secret: s, username: u, password: very-secret-pw}}
store: {{url: "sqlite:///{tmp_path}/state.db"}}
server: {{listen: "127.0.0.1:{port}", shutdown_grace: 2s}}
logging: {{level: info, format: json}}
"""
    )
    return config


def test_run_serves_health_and_metrics_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, port)
    process = subprocess.Popen(
        [*sftriggerd_command(), "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        status, body = wait_for(f"http://127.0.0.1:{port}/healthz")
        assert status == 200
        assert json.loads(body) == {"status": "ok"}
        status, body = wait_for(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert b"sftriggerd_salesforce_api_usage_ratio" in body
        status, _ = wait_for(f"http://127.0.0.1:{port}/readyz")
        assert status == 200
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    events = [json.loads(line)["event"] for line in stderr.splitlines() if line.startswith("{")]
    order = [events.index(name) for name in ("signal_received", "daemon_stopping")]
    assert order == sorted(order) and events[-1] == "daemon_stopped"
    assert "very-secret-pw" not in stderr


def test_run_with_a_bad_file_exits_2_without_traceback(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("salesforce: {auth: {client_id: c}}\nserver: {listen: nowhere}\n")
    result = run_cli("run", "--config", str(config))
    assert result.returncode == 2
    assert "server.listen: 'nowhere' is not host:port" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_on_a_taken_port_exits_1_with_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = write_config(tmp_path, taken.getsockname()[1])
        result = run_cli("run", "--config", str(config))
    assert result.returncode == 1
    assert "cannot listen on 127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_tells_systemd_when_ready_and_when_stopping(tmp_path: Path) -> None:
    import os
    import socket

    port = free_port()
    config = write_config(tmp_path, port)
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(str(path))
        systemd.settimeout(20)
        process = subprocess.Popen(
            [*sftriggerd_command(), "run", "--config", str(config)],
            env={**os.environ, "NOTIFY_SOCKET": str(path)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert systemd.recv(64) == b"READY=1"
            process.send_signal(signal.SIGTERM)
            assert systemd.recv(64) == b"STOPPING=1"
            assert process.wait(timeout=15) == 0
        finally:
            if process.poll() is None:
                process.kill()
