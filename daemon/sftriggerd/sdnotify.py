"""systemd's readiness protocol (`Type=notify`), without a dependency: one datagram to
$NOTIFY_SOCKET. Outside systemd the variable is unset and every call does nothing."""

from __future__ import annotations

import os
import socket


def notify(state: str) -> bool:
    """Sends e.g. `READY=1` or `STOPPING=1`; True when a socket was there to receive it."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket: the name starts with a NUL byte
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError:
        return False  # systemd gone or the socket not ours: readiness is advisory
    return True
