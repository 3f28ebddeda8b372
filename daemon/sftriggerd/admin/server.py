"""The aiohttp app behind `server.listen`, and its start and stop."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..errors import SftriggerdError
from ..logs import get_logger
from ..metrics import Metrics

log = get_logger(__name__)

# Returns the reasons the daemon is not ready; an empty list means ready.
ReadinessCheck = Callable[[], list[str]]

METRICS_KEY = web.AppKey("metrics", Metrics)
READINESS_KEY = web.AppKey("readiness", list[ReadinessCheck])


async def healthz(request: web.Request) -> web.Response:
    # Answering at all proves the event loop turns; that is what liveness means here.
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    reasons = [reason for check in request.app[READINESS_KEY] for reason in check()]
    if reasons:
        return web.json_response({"status": "not_ready", "reasons": reasons}, status=503)
    return web.json_response({"status": "ready"})


async def metrics_view(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS_KEY].registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def build_admin_app(metrics: Metrics, readiness: list[ReadinessCheck]) -> web.Application:
    app = web.Application()
    app[METRICS_KEY] = metrics
    app[READINESS_KEY] = readiness
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
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
