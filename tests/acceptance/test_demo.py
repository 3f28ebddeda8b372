"""`sftriggerd demo` shows deliveries within seconds and stops cleanly on Ctrl-C."""

import re
import signal
import subprocess
import time
from pathlib import Path

from tests.acceptance.cli import sftriggerd_command

_WAYS = ("pubsub", "cometd", "polling")


def test_demo_prints_signed_deliveries_and_stops_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [*sftriggerd_command(), "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 30
    assert process.stdout is not None
    try:
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            delivered = [seen for seen in lines if "signature ok" in seen]
            # Each way of reading the org shows at least once: Pub/Sub, CometD, polling.
            if all(any(f"via {way}" in seen for seen in delivered) for way in _WAYS):
                break
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    output = "".join(lines) + rest
    assert process.returncode == 0, output
    deliveries = [line for line in output.splitlines() if "signature ok" in line]
    assert len(deliveries) >= 3, output
    assert any("account.created" in line and "via pubsub" in line for line in deliveries)
    assert any("opportunity.created" in line and "via cometd" in line for line in deliveries)
    assert any("contact.created" in line and "via polling" in line for line in deliveries)
    assert "admin     http://127.0.0.1:" in output
    assert output.rstrip().endswith("demo stopped")
    # Its temporary folder (the store's, shown at start) is gone once it stopped.
    store = re.search(r"^  store     (\S+)/state\.db$", output, re.M)
    assert store is not None, output
    assert not Path(store.group(1)).exists()
    assert "Traceback" not in output
