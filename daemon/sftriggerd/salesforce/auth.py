"""The four OAuth flows of CONTRACT §2, each turning settings into one token request.

Salesforce answers every flow with the same body (research §1.2): an access token and the
org's instance URL, no expiry. Failures become AuthenticationError naming the cause and never
carrying a secret.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt

from ..config.settings import AuthSettings
from ..errors import AuthenticationError, SalesforceError

# Salesforce accepts a JWT for a few minutes; 3 minutes is what its own samples use.
_JWT_LIFETIME_S = 180


@dataclass(frozen=True)
class Token:
    access_token: str
    instance_url: str
    issued_at_ms: int

    def __repr__(self) -> str:
        return f"Token(instance_url={self.instance_url!r}, issued_at_ms={self.issued_at_ms})"


class SalesforceUnavailable(SalesforceError):
    """The token endpoint could not be reached or failed on its side; worth retrying."""


def jwt_audience(login_url: str) -> str:
    """The `aud` claim: the login or test host, whichever the org belongs to."""
    host = urlsplit(login_url).hostname or ""
    if host in ("login.salesforce.com", "test.salesforce.com"):
        return f"https://{host}"
    if host.endswith(".sandbox.my.salesforce.com"):
        return "https://test.salesforce.com"
    if host.endswith(".my.salesforce.com"):
        return "https://login.salesforce.com"
    return login_url.rstrip("/")  # an emulator or a private endpoint names itself


def token_form(auth: AuthSettings, login_url: str) -> dict[str, str]:
    """The form fields of the token request for the configured flow."""
    secret = auth.client_secret.get_secret_value() if auth.client_secret else ""
    if auth.flow == "password":
        token = auth.security_token.get_secret_value() if auth.security_token else ""
        password = auth.password.get_secret_value() if auth.password else ""
        return {
            "grant_type": "password",
            "client_id": auth.client_id,
            "client_secret": secret,
            "username": auth.username or "",
            "password": password + token,
        }
    if auth.flow == "jwt":
        return {
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": _jwt_assertion(auth, login_url),
        }
    if auth.flow == "client_credentials":
        return {
            "grant_type": "client_credentials",
            "client_id": auth.client_id,
            "client_secret": secret,
        }
    refresh = auth.refresh_token.get_secret_value() if auth.refresh_token else ""
    form = {"grant_type": "refresh_token", "client_id": auth.client_id, "refresh_token": refresh}
    if secret:
        form["client_secret"] = secret
    return form


def _jwt_assertion(auth: AuthSettings, login_url: str) -> str:
    key = auth.private_key.get_secret_value() if auth.private_key else ""
    claims = {
        "iss": auth.client_id,
        "sub": auth.username,
        "aud": jwt_audience(login_url),
        "exp": int(time.time()) + _JWT_LIFETIME_S,
    }
    try:
        return jwt.encode(claims, key, algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        # The message of a key-parsing error never contains the key itself.
        raise AuthenticationError(f"the jwt private_key cannot sign: {exc}") from exc


async def request_token(
    http: aiohttp.ClientSession,
    auth: AuthSettings,
    login_url: str,
    *,
    proxy: str | None = None,
    timeout_s: float = 30.0,
) -> Token:
    """One login; AuthenticationError for a refusal, SalesforceUnavailable for a failure."""
    url = f"{login_url.rstrip('/')}/services/oauth2/token"
    form = token_form(auth, login_url)
    try:
        async with http.post(
            url, data=form, proxy=proxy, timeout=aiohttp.ClientTimeout(total=timeout_s)
        ) as response:
            body = await _json_or_none(response)
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SalesforceUnavailable(f"cannot reach {url}: {type(exc).__name__}") from exc
    if status == 200 and isinstance(body, dict) and "access_token" in body:
        return Token(
            access_token=str(body["access_token"]),
            instance_url=str(body["instance_url"]).rstrip("/"),
            issued_at_ms=int(body.get("issued_at") or time.time() * 1000),
        )
    if status >= 500 or status == 429:
        raise SalesforceUnavailable(f"token endpoint answered HTTP {status}")
    raise AuthenticationError(_describe_refusal(auth.flow, status, body))


def _describe_refusal(flow: str, status: int, body: Any) -> str:
    if isinstance(body, dict) and "error" in body:
        error = str(body.get("error"))
        description = str(body.get("error_description", ""))
        hint = _HINTS.get((error, description), "")
        return f"Salesforce rejected the {flow} login: {error}: {description}{hint}"
    return f"Salesforce rejected the {flow} login with HTTP {status}"


_HINTS = {
    ("invalid_grant", "authentication failure"): (
        " (wrong username, password or security token, an IP restriction, or the flow is"
        " blocked for this org)"
    ),
    ("invalid_client_id", "client identifier invalid"): " (check salesforce.auth.client_id)",
    ("invalid_client", "invalid client credentials"): " (check salesforce.auth.client_secret)",
    ("unsupported_grant_type", "grant type not supported"): (
        " (enable this flow on the connected app)"
    ),
    ("invalid_grant", "request not supported on this domain"): (
        " (client_credentials needs the My Domain URL as salesforce.login_url)"
    ),
    ("invalid_grant", "user hasn't approved this consumer"): (
        " (pre-authorize the user's profile or permission set on the connected app)"
    ),
}


async def _json_or_none(response: aiohttp.ClientResponse) -> Any:
    try:
        return await response.json(content_type=None)
    except ValueError:
        return None
