"""Builds the emulator's application from its parts and serves it.

One aiohttp application answers OAuth, REST, the Streaming API and the `/_emulator/` admin
calls on one base URL, which is both the login URL and the instance URL of the org. The
Pub/Sub API (gRPC) starts and stops with it, on a port of its own when one is configured.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

from aiohttp import web

from sftriggerd.errors import ConfigError
from sftriggerd_emulator import control, oauth, query, replication, rest, sobjects
from sftriggerd_emulator.clock import EmulatorClock
from sftriggerd_emulator.context import EmulatorContext, EmulatorSettings
from sftriggerd_emulator.cursors import QueryCursors
from sftriggerd_emulator.faults import FaultRegistry
from sftriggerd_emulator.identity import (
    ORG_ID,
    ConnectedApp,
    Directory,
    SessionRegistry,
    load_users_file,
)
from sftriggerd_emulator.limits import HEADER_STYLES, ApiUsage, HeaderStyle
from sftriggerd_emulator.org import EmulatorOrg
from sftriggerd_emulator.parts import PARTS, EmulatorParts
from sftriggerd_emulator.persistence import OrgStore
from sftriggerd_emulator.pubsub import install_pubsub
from sftriggerd_emulator.streaming import install_streaming


def build_app(settings: EmulatorSettings) -> tuple[web.Application, EmulatorContext]:
    """The application and its shared context; `ctx.base_url` is right once the caller has
    bound the socket and written the port into `settings.port`."""
    directory = _directory(settings)
    usage = ApiUsage(settings.api_daily_max, _header_style(settings.limit_info_style))
    clock = EmulatorClock()
    store = OrgStore(settings.state_dir) if settings.state_dir is not None else None
    org = EmulatorOrg(clock, store)
    sessions = SessionRegistry(clock, ORG_ID, settings.session_idle_s)
    faults = FaultRegistry()
    ctx = EmulatorContext(settings=settings, org=org, sessions=sessions, faults=faults, clock=clock)
    connected_app = ConnectedApp(
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        jwt_public_key_pem=settings.jwt_public_key_pem,
        blocked_grants=set(settings.blocked_grants),
    )
    parts = EmulatorParts(
        ctx, clock, org, sessions, faults, usage, directory, connected_app, QueryCursors(), store
    )
    app = web.Application(middlewares=[rest.rest_middleware])
    app[PARTS] = parts
    oauth.add_routes(app)
    rest.add_routes(app)
    query.add_routes(app)
    replication.add_routes(app)  # before sobjects: `{Object}/{Id}` would take `updated`
    sobjects.add_routes(app)
    control.add_routes(app)
    install_streaming(ctx, app)
    install_pubsub(parts, app)  # reads the streams install_streaming made
    app.on_cleanup.append(_close_store)
    return app, ctx


def _directory(settings: EmulatorSettings) -> Directory:
    directory = Directory(settings.refresh_token)
    if settings.users_file is not None:
        for spec in load_users_file(settings.users_file):
            directory.add(spec)
    return directory


def _header_style(style: str) -> HeaderStyle:
    if style not in HEADER_STYLES:
        raise ConfigError([f"limit_info_style must be one of {', '.join(HEADER_STYLES)}"])
    return cast(HeaderStyle, style)


async def _close_store(app: web.Application) -> None:
    store = app[PARTS].store
    if store is not None:
        store.close()


async def run_emulator(settings: EmulatorSettings, users_file: Path | None) -> None:
    """Serves until cancelled; prints `emulator listening on http://HOST:PORT` once bound,
    then `pubsub listening on HOST:PORT` when the Pub/Sub API is served."""
    if users_file is not None:
        settings.users_file = users_file
    app, ctx = build_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        if settings.port == 0:
            settings.port = runner.addresses[0][1]
        print(f"emulator listening on {ctx.base_url}", flush=True)
        if ctx.pubsub_address is not None:
            print(f"pubsub listening on {ctx.pubsub_address}", flush=True)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
