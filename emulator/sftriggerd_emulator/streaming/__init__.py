"""The emulator's Streaming API: Salesforce's CometD/Bayeux long-polling server.

`install_streaming` adds it to the emulator's application: the `/cometd/<version>` endpoint,
the streaming `/_emulator/` calls, the listener that turns the org's record changes into
change events and PushTopic events, and the shutdown hook that answers held connects so a
stopping server does not wait out their long polls.
"""

from __future__ import annotations

from aiohttp import web

from sftriggerd_emulator.context import EmulatorContext
from sftriggerd_emulator.streaming import control, endpoint
from sftriggerd_emulator.streaming.clients import WakeReason
from sftriggerd_emulator.streaming.hub import StreamingHub
from sftriggerd_emulator.streaming.store import StreamingStore

__all__ = ["install_streaming"]


def install_streaming(ctx: EmulatorContext, app: web.Application) -> None:
    state_dir = ctx.settings.state_dir
    hub = StreamingHub(ctx, StreamingStore(state_dir) if state_dir is not None else None)
    app[endpoint.HUB] = hub
    ctx.org.add_listener(hub.on_record_change)
    endpoint.add_routes(app)
    control.add_routes(app)

    async def answer_held_connects(app: web.Application) -> None:
        hub.clients.interrupt_holds(WakeReason.SHUTDOWN)

    async def close_store(app: web.Application) -> None:
        hub.close()

    app.on_shutdown.append(answer_held_connects)
    app.on_cleanup.append(close_store)
