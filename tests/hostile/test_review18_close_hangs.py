"""Stopping with a collector that takes the connection but never answers (a hung
collector, a proxy holding the socket): the docs say the daemon waits up to 5 s for the
last spans, but closing flushes every queued batch, each waiting out the exporter's own
timeout, so a full queue holds the stop for tens of seconds (minutes with a larger
OTEL_BSP_MAX_QUEUE_SIZE), past a service manager's stop timeout."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from sftriggerd.tracing import setup

# The documented wait (5 s), with room for the exporter's shutdown.
CLOSE_LIMIT_S = 12.0


@pytest.fixture
def silent_collector() -> Iterator[int]:
    """Accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            held.append(connection)

    accepting = threading.Thread(target=accept, daemon=True)
    accepting.start()
    try:
        yield server.getsockname()[1]
    finally:
        # Shut down (not only closed) so the blocked accept() returns and the thread ends
        # before the connections it took are closed.
        server.shutdown(socket.SHUT_RDWR)
        server.close()
        accepting.join(5)
        for connection in held:
            connection.close()


async def test_closing_with_a_silent_collector_keeps_to_the_documented_wait(
    silent_collector: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The exporter reads its endpoint from the process's environment.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{silent_collector}")
    traces, plan = setup.configure(os.environ)
    assert traces.on, plan.problem
    # A busy daemon's queue at its default size (2048): three spans per change.
    for _ in range(2048):
        with traces.ingest_span("accounts", 1):
            pass
    started = time.monotonic()
    await traces.close()
    took_s = time.monotonic() - started
    assert took_s < CLOSE_LIMIT_S, f"closing tracing took {took_s:.1f}s"
