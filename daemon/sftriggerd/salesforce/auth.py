"""The four OAuth flows, each turning settings into one token request.

Salesforce answers every flow with the same body: an access token and the org's instance URL,
no expiry. What an answer means is read in `answers.classify_token`: a refusal becomes
AuthenticationError naming the cause and never carrying a secret; a failure on Salesforce's
side (5xx, 429, `unknown_error`) or on the way (connection, proxy) SalesforceUnavailable.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import aiohttp
import jwt

from ..config.settings import AuthSettings
from ..errors import AuthenticationError
from .answers import RetryLater, SalesforceUnavailable, Token, classify_token, describe_exception

__all__ = ["SalesforceUnavailable", "Token", "jwt_audience", "request_token", "token_form"]

# Salesforce accepts a JWT for a few minutes; 3 minutes is what its own samples use.
_JWT_LIFETIME_S = 180


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
    """One login: AuthenticationError for a refusal, SalesforceUnavailable for a failure on
    the way or on Salesforce's side, MalformedAnswerError for a grant we cannot use."""
    url = f"{login_url.rstrip('/')}/services/oauth2/token"
    form = token_form(auth, login_url)
    try:
        async with http.post(
            url, data=form, proxy=proxy, timeout=aiohttp.ClientTimeout(total=timeout_s)
        ) as response:
            body = await response.read()
            status, headers = response.status, response.headers
    except (aiohttp.ClientError, OSError) as exc:
        # `from None`: the cause's repr carries the proxy URL and its Proxy-Authorization.
        raise SalesforceUnavailable(f"cannot reach {url}: {describe_exception(exc)}") from None
    verdict = classify_token(status, headers, body, auth.flow, datetime.now(UTC))
    if isinstance(verdict, Token):
        return verdict
    if isinstance(verdict, RetryLater):
        raise SalesforceUnavailable(verdict.reason, verdict.after_s)
    raise verdict.error
