"""The aiohttp app behind `server.listen`, and its start and stop."""

from __future__ import annotations

from types import TracebackType

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..errors import SftriggerdError
from ..logs import get_logger
from .api import STATE_KEY, add_api_routes
from .delivery_view import add_delivery_routes
from .guard import admin_guard, warn_if_open
from .replay_api import add_replay_routes
from .replicas import add_replica_routes
from .state import AdminState
from .status_page import add_status_page

log = get_logger(__name__)


async def healthz(request: web.Request) -> web.Response:
    # Answering at all proves the event loop turns; that is what liveness means here.
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    # The ping first: the reasons and the parts are then read at one moment, with no await
    # between them, so the answer never pairs old reasons with newer failing parts.
    reachable = state.store is None or await state.store.ping()
    reasons = [reason for check in state.readiness for reason in check()]
    if not reachable:
        reasons.insert(0, "store: not reachable")
    parts = state.part_health() if state.part_health is not None else []
    failing = [part.name for part in parts if part.state != "running"]
    if reasons:
        answer = {"status": "not_ready", "reasons": reasons, "failing_parts": failing}
        return web.json_response(answer, status=503)
    return web.json_response({"status": "ready"})


async def metrics_view(request: web.Request) -> web.Response:
    body = generate_latest(request.app[STATE_KEY].metrics.registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def build_admin_app(state: AdminState) -> web.Application:
    app = web.Application(middlewares=[admin_guard])
    app[STATE_KEY] = state
    warn_if_open(state.settings.server)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    add_api_routes(app)
    add_delivery_routes(app)
    add_replay_routes(app)
    add_replica_routes(app)
    add_status_page(app)
    return app


class AdminServer:
    """Serves the admin app while the `async with` block runs."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self._runner = web.AppRunner(app, access_log=None)
        self._host = host
        self._port = port

    @property
    def bound_port(self) -> int:
        return int(self._runner.addresses[0][1])

    async def __aenter__(self) -> AdminServer:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise SftriggerdError(
                f"cannot listen on {self._host}:{self._port}: {exc.strerror}"
            ) from exc
        log.info("admin_listening", host=self._host, port=self.bound_port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._runner.cleanup()
