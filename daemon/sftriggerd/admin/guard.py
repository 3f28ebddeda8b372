"""What stands between an admin request and the store: errors as JSON, and the rules for
mutations (a JSON content type, the admin token, no open mutations beyond loopback).

A mutation (redrive) needs `Content-Type: application/json`: a web page in an operator's
browser can send a cross-site POST without asking only with a form's content types, so this
makes the browser ask first (a CORS preflight, which this server never grants). When the
server listens beyond loopback without `server.admin_token`, anyone who reaches the port could
mutate: such mutations are refused with 403 until a token is set. On loopback without a token,
the Host header must name loopback too, so a DNS-rebinding page cannot pass as local.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..config.settings import ServerSettings
from ..errors import StoreError
from ..logs import get_logger
from .params import BadRequestError
from .state import STATE_KEY

log = get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def is_loopback_host(host: str) -> bool:
    """Whether `server.listen`'s host is reachable from this machine only."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False  # a name that may resolve to anything: treat it as reachable


def mutations_open(server: ServerSettings) -> bool:
    """Whether mutations must be refused: no token, and a port that other machines reach."""
    return server.admin_token is None and not is_loopback_host(server.host)


def warn_if_open(server: ServerSettings) -> None:
    if mutations_open(server):
        log.warning(
            "admin_token_missing",
            listen=server.listen,
            detail=(
                "the admin server listens beyond loopback without an admin token, so redrive"
                " and every other mutation are refused (403); set server.admin_token in the"
                " config, or the SFTRIGGERD_ADMIN_TOKEN variable it reads, to allow them"
            ),
        )


def _is_json(request: web.Request) -> bool:
    # aiohttp's content_type is the media type alone, lower-cased, parameters removed.
    return request.content_type == "application/json"


@web.middleware
async def admin_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in _MUTATING:
        refusal = _refuse_mutation(request)
        if refusal is not None:
            return refusal
    try:
        return await handler(request)
    except BadRequestError as exc:
        return error(400, str(exc))
    except StoreError as exc:
        log.warning("admin_store_error", path=request.path, error=str(exc))
        return error(503, "the store is not available; try again shortly")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error(exc.status, exc.reason)


def _refuse_mutation(request: web.Request) -> web.Response | None:
    server = request.app[STATE_KEY].settings.server
    if not _is_json(request):
        return error(415, "send Content-Type: application/json with this call")
    if mutations_open(server):
        return error(
            403,
            "mutations are refused: this server listens beyond loopback without an admin"
            " token; set server.admin_token (or SFTRIGGERD_ADMIN_TOKEN) and restart",
        )
    if server.admin_token is None and not is_loopback_host(host_of(request.host)):
        # Loopback without a token: a web page whose name was rebound to 127.0.0.1 is
        # same-origin to the browser, but still sends its own name as Host.
        return error(403, "mutations without an admin token are taken only for a loopback Host")
    if server.admin_token is not None and not _token_matches(request, server):
        response = error(401, "this call needs Authorization: Bearer <server.admin_token>")
        response.headers["WWW-Authenticate"] = 'Bearer realm="sftriggerd"'
        return response
    return None


def host_of(header: str) -> str:
    """The host of a Host header: `127.0.0.1:8080` -> `127.0.0.1`, `[::1]:8080` -> `::1`."""
    if header.startswith("["):
        return header[1:].partition("]")[0]
    host, _, port = header.rpartition(":")
    return host if host and ":" not in host and port.isascii() and port.isdigit() else header


def _token_matches(request: web.Request, server: ServerSettings) -> bool:
    assert server.admin_token is not None
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    expected = server.admin_token.get_secret_value().encode()
    # Constant time: how long the comparison takes says nothing about the token.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8", "surrogateescape"), expected
    )
