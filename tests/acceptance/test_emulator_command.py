"""`sftriggerd emulator` from the installed console script: serves an org you can log in to."""

import json
import signal
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

from tests.acceptance.cli import free_port, sftriggerd_command
from tests.acceptance.test_run_lifecycle import wait_for


def test_emulator_serves_logins_and_keeps_state(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [*sftriggerd_command(), "emulator", "--port", str(port), "--state", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/_emulator/stats")
        form = urllib.parse.urlencode(
            {
                "grant_type": "password",
                "client_id": "emulator-client",
                "client_secret": "emulator-secret",
                "username": "admin@emulator.local",
                "password": "emulator",
            }
        ).encode()
        with urllib.request.urlopen(f"{base}/services/oauth2/token", data=form) as response:
            token = json.loads(response.read())
        assert token["token_type"] == "Bearer" and "expires_in" not in token
        assert token["instance_url"] == base
    finally:
        process.send_signal(signal.SIGINT)
        stdout, _ = process.communicate(timeout=15)
    assert f"emulator listening on http://127.0.0.1:{port}" in stdout
    assert any(tmp_path.iterdir())
