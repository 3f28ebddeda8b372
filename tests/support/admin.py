"""The admin app of a test's own state, served on a free loopback port."""

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from sftriggerd.admin.server import AdminServer, build_admin_app
from sftriggerd.admin.state import AdminState

Serve = Callable[[AdminState], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Starts the admin app of a state on a free port and returns its base URL (no trailing
    slash); every server started is stopped after the test."""
    servers: list[AdminServer] = []

    async def start(state: AdminState) -> str:
        server = AdminServer(build_admin_app(state), "127.0.0.1", 0)
        await server.__aenter__()
        servers.append(server)
        return f"http://127.0.0.1:{server.bound_port}"

    yield start
    for server in servers:
        await server.__aexit__(None, None, None)
