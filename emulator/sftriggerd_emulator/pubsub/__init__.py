"""The emulator's Pub/Sub API: Salesforce's gRPC event API on a port of its own.

`install_pubsub` adds it to the emulator's application when `settings.pubsub_port` is set:
the gRPC server starts and stops with the application, reads the streaming side's streams
(the same events, at the same positions, as CometD subscribers get), and its
`/_emulator/pubsub/...` control calls join the others.
"""

from __future__ import annotations

import grpc
from aiohttp import web

from sftriggerd_emulator.parts import EmulatorParts
from sftriggerd_emulator.pubsub import control
from sftriggerd_emulator.pubsub.codec import EventCodec
from sftriggerd_emulator.pubsub.service import PubSubService
from sftriggerd_emulator.streaming.endpoint import HUB

__all__ = ["install_pubsub"]

SERVER = web.AppKey("pubsub_server", grpc.aio.Server)
# How long a stopping server lets open calls finish before cancelling them.
_STOP_GRACE_S = 0.2


def install_pubsub(parts: EmulatorParts, app: web.Application) -> None:
    settings = parts.ctx.settings
    if settings.pubsub_port is None:
        return
    hub = app[HUB]

    def field_types(name: str) -> list[tuple[str, str]] | None:
        schema = parts.org.schema(name)
        return None if schema is None else [(info.name, info.type) for info in schema.fields()]

    service = PubSubService(parts.ctx, hub, EventCodec(field_types))
    app[control.SERVICE] = service
    control.add_routes(app)

    async def start(app: web.Application) -> None:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((service.handler(),))
        port = server.add_insecure_port(f"{settings.host}:{settings.pubsub_port}")
        await server.start()
        settings.pubsub_port = port
        app[SERVER] = server

    async def stop(app: web.Application) -> None:
        server = app.get(SERVER)
        if server is not None:
            await server.stop(_STOP_GRACE_S)

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
