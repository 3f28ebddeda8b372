"""The login check: one token request for the configured flow, and each refusal Salesforce
answers read into the mistake that usually causes it, with where to fix it.

The request is made here rather than through `salesforce.auth.request_token` because the
doctor wants the raw `error` and `error_description`, not the daemon's one-line error.
"""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp

from ..config.settings import SalesforceSettings
from ..errors import AuthenticationError
from ..salesforce.answers import (
    RetryLater,
    Token,
    classify_token,
    describe_exception,
    parse_body,
)
from ..salesforce.auth import jwt_audience, token_form
from .checks import Check, failed, ok

LOGIN_TIMEOUT_S = 30.0

# Both kinds of app: orgs made now get external client apps (new connected apps can no
# longer be created), older orgs still run connected apps; the wording is Salesforce's own.
_APPROVAL_FIX = (
    "in Setup, App Manager, the connected app, Manage, Edit Policies (an external client app: "
    "External Client App Manager, the app, Edit Policies), under OAuth Policies: set Permitted "
    "Users to 'Admin approved users are pre-authorized', then add the user's profile or "
    "permission set"
)
_PASSWORD_FLOW_FIX = (
    "check salesforce.auth.username, password and security_token (a new password resets the "
    "token); orgs created since Summer '23 block the flow: Setup, OAuth and OpenID Connect "
    "Settings, 'Allow OAuth Username-Password Flows' (or use the jwt or client_credentials flow)"
)


def named_mistake(
    flow: str, error: str, description: str, login_url: str
) -> tuple[str, str] | None:
    """What a refusal usually means, and its fix; None for one without a known cause."""
    wording = description.strip().lower()
    if error == "invalid_grant" and wording == "user hasn't approved this consumer":
        what = (
            "the connected app is not pre-authorised for this user"
            if flow in ("jwt", "client_credentials")
            else "the user has not approved the connected app"
        )
        return what, _APPROVAL_FIX
    if error == "invalid_grant" and wording == "audience is invalid":
        return (
            f"wrong JWT audience ({jwt_audience(login_url)}, from salesforce.login_url)",
            "set salesforce.login_url to https://login.salesforce.com (production), "
            "https://test.salesforce.com (sandbox) or the org's My Domain URL",
        )
    if error == "invalid_grant" and wording == "authentication failure":
        if flow == "password":
            return "wrong username, password or security token, or the password flow is blocked", (
                _PASSWORD_FLOW_FIX
            )
        return "the credentials were refused", "check salesforce.auth for the configured flow"
    if error == "invalid_grant" and wording == "request not supported on this domain":
        return (
            "client_credentials is refused on the login host",
            "set salesforce.login_url to the org's My Domain URL",
        )
    if error == "invalid_client_id":
        return (
            "unknown client_id",
            "set salesforce.auth.client_id to the connected app's consumer key",
        )
    if error == "invalid_client":
        return (
            "wrong client_secret",
            "set salesforce.auth.client_secret to the connected app's consumer secret",
        )
    if error == "unsupported_grant_type":
        return (
            f"the {flow} flow is not enabled for this connected app",
            "enable the flow in the connected app's OAuth settings",
        )
    return None


async def check_login(
    http: aiohttp.ClientSession, settings: SalesforceSettings
) -> tuple[Check, Token | None]:
    auth = settings.auth
    name = f"login ({auth.flow})"
    url = f"{settings.login_url.rstrip('/')}/services/oauth2/token"
    try:
        form = token_form(auth, settings.login_url)
    except AuthenticationError as exc:
        return failed(name, str(exc), "check salesforce.auth.private_key"), None
    try:
        async with http.post(
            url,
            data=form,
            proxy=settings.proxy,
            timeout=aiohttp.ClientTimeout(total=LOGIN_TIMEOUT_S),
        ) as response:
            body = await response.read()
            status, headers = response.status, response.headers
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        fix = "check salesforce.login_url, salesforce.proxy and the network"
        return failed(name, f"cannot reach {url}: {describe_exception(exc)}", fix), None
    verdict = classify_token(status, headers, body, auth.flow, datetime.now(UTC))
    if isinstance(verdict, Token):
        who = f" as {auth.username}" if auth.username else ""
        return ok(name, f"logged in{who} to {verdict.instance_url}"), verdict
    if isinstance(verdict, RetryLater):
        return failed(name, f"Salesforce failed on its side: {verdict.reason}", "try again"), None
    parsed, _ = parse_body(body)
    error = str(parsed.get("error", "")) if isinstance(parsed, dict) else ""
    description = str(parsed.get("error_description", "")) if isinstance(parsed, dict) else ""
    mistake = named_mistake(auth.flow, error, description, settings.login_url)
    if mistake is None:
        return failed(name, str(verdict.error), ""), None
    what, fix = mistake
    return failed(name, f"{what} (Salesforce: {error}: {description})", fix), None
