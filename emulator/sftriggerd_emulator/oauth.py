"""`POST /services/oauth2/token`: password, JWT bearer, client credentials and refresh token.

One base URL plays both of Salesforce's hosts: a request whose Host is `localhost:<port>` is
on the login host, any other Host (normally `127.0.0.1:<port>`) is the org's own My Domain.
So `instance_url` is the request's own base URL, except that a login on `localhost` is sent
to `127.0.0.1`, the way login.salesforce.com sends a client on to its My Domain; and the
client-credentials grant is refused on the login host, as Salesforce refuses it there.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from aiohttp import web
from yarl import URL

from sftriggerd_emulator.clock import epoch_ms
from sftriggerd_emulator.identity import ORG_ID, ConnectedApp, Directory, User
from sftriggerd_emulator.parts import EmulatorParts, parts_of
from sftriggerd_emulator.rest import bearer_token

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# The names `blocked_grants` uses for each grant_type.
GRANT_NAMES = {
    "password": "password",
    JWT_GRANT: "jwt",
    "client_credentials": "client_credentials",
    "refresh_token": "refresh_token",
}
LOGIN_HOSTS = frozenset({"localhost", "login.salesforce.com", "test.salesforce.com"})
FORM_TYPE = "application/x-www-form-urlencoded"

JWT_CLOCK_SKEW_S = 180
STANDARD_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")

Form = dict[str, str]


class OAuthError(Exception):
    """A token request Salesforce refuses, with its `error` and `error_description`."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass(frozen=True)
class Grant:
    user: User
    scope: str | None = None


def _authentication_failure() -> OAuthError:
    return OAuthError("invalid_grant", "authentication failure")


def _unsupported_grant() -> OAuthError:
    return OAuthError("unsupported_grant_type", "grant type not supported")


def _invalid_assertion() -> OAuthError:
    return OAuthError("invalid_grant", "invalid assertion")


def verify_assertion(
    assertion: str,
    connected_app: ConnectedApp,
    directory: Directory,
    audiences: Collection[str],
    now: datetime,
) -> User:
    """The user a JWT bearer assertion logs in, or the OAuthError Salesforce would answer.

    The RS256 signature must verify with the connected app's key (or, in the emulator, the
    user's key from `--users`); then iss, sub, aud and exp, with about three minutes of skew.
    """
    try:
        header = jwt.get_unverified_header(assertion)
        claims: dict[str, Any] = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise _invalid_assertion() from exc
    if header.get("alg") != "RS256":
        raise _invalid_assertion()
    if claims.get("iss") != connected_app.client_id:
        raise OAuthError("invalid_client_id", "client identifier invalid")
    user = directory.by_username(str(claims.get("sub", "")))
    if user is None:
        raise OAuthError("invalid_grant", "user hasn't approved this consumer")
    keys = [key for key in (connected_app.jwt_public_key_pem, user.jwt_public_key_pem) if key]
    if not any(_signed_by(assertion, key) for key in keys):
        raise _invalid_assertion()
    if not _audience_ok(claims.get("aud"), audiences):
        raise OAuthError("invalid_grant", "audience is invalid")
    expires = claims.get("exp")
    if not isinstance(expires, int | float) or expires + JWT_CLOCK_SKEW_S < now.timestamp():
        raise OAuthError("invalid_grant", "expired authorization code")
    return user


def _signed_by(assertion: str, public_key_pem: str) -> bool:
    try:
        jwt.decode(
            assertion,
            public_key_pem,
            algorithms=["RS256"],
            options={"verify_aud": False, "verify_exp": False, "verify_iat": False},
        )
    except (jwt.PyJWTError, ValueError):
        return False
    return True


def _audience_ok(claim: Any, audiences: Collection[str]) -> bool:
    allowed = {audience.rstrip("/") for audience in audiences}
    given = claim if isinstance(claim, list) else [claim]
    return any(isinstance(item, str) and item.rstrip("/") in allowed for item in given)


async def token_endpoint(request: web.Request) -> web.Response:
    parts = parts_of(request)
    delay_s = parts.faults.delay_s("token")
    if delay_s:
        await asyncio.sleep(delay_s)
    failure = parts.faults.take_failure("token", request.path_qs)
    if failure is not None:
        refusal = OAuthError("unknown_error", "retry your request")
        response = web.json_response(refusal.body(), status=failure.status)
        if failure.retry_after is not None:
            response.headers["Retry-After"] = failure.retry_after
        return response
    try:
        grant = await _grant(parts, request)
    except OAuthError as exc:
        parts.ctx.stats["login_failures"] += 1
        return web.json_response(exc.body(), status=400)
    parts.ctx.stats["logins"] += 1
    return web.json_response(_token_body(parts, request, grant))


async def _grant(parts: EmulatorParts, request: web.Request) -> Grant:
    if request.content_type != FORM_TYPE:
        raise _unsupported_grant()
    posted = await request.post()
    form = {key: value for key, value in posted.items() if isinstance(value, str)}
    grant_type = form.get("grant_type", "")
    handler = _HANDLERS.get(grant_type)
    if handler is None:
        raise _unsupported_grant()
    if GRANT_NAMES[grant_type] in parts.connected_app.blocked_grants:
        # A blocked username-password flow fails generically; other flows look unsupported.
        raise _authentication_failure() if grant_type == "password" else _unsupported_grant()
    return handler(parts, request, form)


def _check_client(
    app: ConnectedApp, client_id: str | None, secret: str | None, *, secret_required: bool
) -> None:
    if client_id != app.client_id:
        raise OAuthError("invalid_client_id", "client identifier invalid")
    if secret is None and not secret_required:
        return
    if not hmac.compare_digest((secret or "").encode(), app.client_secret.encode()):
        raise OAuthError("invalid_client", "invalid client credentials")


def _password_grant(parts: EmulatorParts, request: web.Request, form: Form) -> Grant:
    _check_client(
        parts.connected_app, form.get("client_id"), form.get("client_secret"), secret_required=True
    )
    user = parts.directory.by_username(form.get("username", ""))
    expected = None if user is None else user.password + user.security_token
    if user is None or expected is None or form.get("password") != expected:
        raise _authentication_failure()
    return Grant(user)


def _jwt_grant(parts: EmulatorParts, request: web.Request, form: Form) -> Grant:
    login_base = _base_url(request, parts)
    port = URL(login_base).port
    audiences = {*STANDARD_AUDIENCES, parts.ctx.base_url, login_base, f"http://localhost:{port}"}
    user = verify_assertion(
        form.get("assertion", ""),
        parts.connected_app,
        parts.directory,
        audiences,
        parts.clock.now(),
    )
    return Grant(user, "id api")


def _client_credentials_grant(parts: EmulatorParts, request: web.Request, form: Form) -> Grant:
    if URL(_base_url(request, parts)).host in LOGIN_HOSTS:
        raise OAuthError("invalid_grant", "request not supported on this domain")
    client_id, secret = _basic_credentials(request) or (
        form.get("client_id"),
        form.get("client_secret"),
    )
    _check_client(parts.connected_app, client_id, secret, secret_required=True)
    username = parts.connected_app.client_credentials_username
    user = None if username is None else parts.directory.by_username(username)
    if user is None:
        raise OAuthError("invalid_grant", "no client credentials user enabled")
    return Grant(user, "id api")


def _refresh_token_grant(parts: EmulatorParts, request: web.Request, form: Form) -> Grant:
    # The secret is optional here, as for apps that do not require it for refresh.
    _check_client(
        parts.connected_app, form.get("client_id"), form.get("client_secret"), secret_required=False
    )
    user = parts.directory.by_refresh_token(form.get("refresh_token", ""))
    if user is None:
        raise OAuthError("invalid_grant", "expired access/refresh token")
    return Grant(user)


_HANDLERS: dict[str, Callable[[EmulatorParts, web.Request, Form], Grant]] = {
    "password": _password_grant,
    JWT_GRANT: _jwt_grant,
    "client_credentials": _client_credentials_grant,
    "refresh_token": _refresh_token_grant,
}


def _basic_credentials(request: web.Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except ValueError:
        return None
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


def _base_url(request: web.Request, parts: EmulatorParts) -> str:
    """The URL the client used to reach us (its login URL), from the Host header."""
    if "Host" not in request.headers:
        return parts.ctx.base_url
    return f"{request.scheme}://{request.host}"


def instance_url(request: web.Request, parts: EmulatorParts) -> str:
    url = URL(_base_url(request, parts))
    if url.host == "localhost":
        url = url.with_host("127.0.0.1")
    return str(url).rstrip("/")


def _token_body(parts: EmulatorParts, request: web.Request, grant: Grant) -> dict[str, str]:
    issued_at = str(epoch_ms(parts.clock.now()))
    id_url = f"{_base_url(request, parts)}/id/{ORG_ID}/{grant.user.user_id}"
    digest = hmac.new(
        parts.connected_app.client_secret.encode(), (id_url + issued_at).encode(), hashlib.sha256
    ).digest()
    body = {
        "access_token": parts.sessions.open(grant.user.user_id, grant.user.username),
        "instance_url": instance_url(request, parts),
        "id": id_url,
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": base64.b64encode(digest).decode(),
    }
    if grant.scope is not None:
        body["scope"] = grant.scope
    return body


async def identity(request: web.Request) -> web.Response:
    """The identity URL (`id` in the token answer), answered for the token's own user."""
    parts = parts_of(request)
    token = bearer_token(request)
    user_id = None if token is None else parts.sessions.user_for_token(token)
    user = None if user_id is None else parts.directory.by_id(user_id)
    if user is None or user.user_id != request.match_info["user"]:
        return web.Response(status=403, text="Bad_OAuth_Token")
    base = instance_url(request, parts)
    return web.json_response(
        {
            "id": f"{_base_url(request, parts)}/id/{ORG_ID}/{user.user_id}",
            "asserted_user": True,
            "user_id": user.user_id,
            "organization_id": ORG_ID,
            "username": user.username,
            "display_name": user.username,
            "active": True,
            "urls": {
                "rest": f"{base}/services/data/v{{version}}/",
                "query": f"{base}/services/data/v{{version}}/query/",
            },
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/services/oauth2/token", token_endpoint)
    app.router.add_get("/id/{org}/{user}", identity)
