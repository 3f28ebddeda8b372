"""`sftriggerd doctor`: every check of a configuration against the real org, endpoints and
store, in order, one result each (docs/doctor.md). Checks that need a login are skipped
(and count as failures) when the login fails."""

from __future__ import annotations

import os

import aiohttp

from ..config import Settings
from ..metrics import Metrics
from ..salesforce.client import RetryPolicy, SalesforceClient
from ..salesforce.session import SalesforceSession
from . import salesforce_checks as rest
from .channel_checks import check_cometd, check_pubsub
from .checks import Check, skipped
from .endpoint_checks import check_endpoint
from .login import check_login
from .store_checks import check_store
from .tracing_check import check_tracing

__all__ = ["Check", "run_doctor"]

# Few, quick retries: a doctor answers in seconds, and a flaky org is itself worth seeing.
_RETRY = RetryPolicy(attempts=2, base_s=0.2, cap_s=1.0, timeout_s=30.0, max_wait_s=5.0)


async def run_doctor(settings: Settings) -> list[Check]:
    checks: list[Check] = []
    async with aiohttp.ClientSession() as http:
        checks.extend(await _salesforce(http, settings))
        secrets = settings.secrets()
        for endpoint in settings.endpoints:
            checks.append(await check_endpoint(http, endpoint, secrets))
    checks.append(await check_tracing(os.environ))
    checks.append(await check_store(settings.store))
    return checks


async def _salesforce(http: aiohttp.ClientSession, settings: Settings) -> list[Check]:
    login, token = await check_login(http, settings.salesforce)
    if token is None:
        return [login, *_skipped_without_login(settings)]
    metrics = Metrics()
    session = SalesforceSession(settings.salesforce, http, metrics, login_attempts=1)
    client = SalesforceClient(settings.salesforce, http, metrics, session=session, retry=_RETRY)
    checks = [
        login,
        await rest.check_api_version(http, client, token),
        await rest.check_budget(client),
    ]
    for trigger in settings.triggers:
        if trigger.object is not None:
            checks.extend(await rest.check_object(client, trigger))
        if trigger.mode == "polling":
            continue
        if trigger.channel_kind == "pushtopic":
            checks.append(await rest.check_pushtopic(client, trigger))
        if trigger.transport == "pubsub":
            checks.append(await check_pubsub(settings.salesforce, session, trigger))
        else:
            checks.append(await check_cometd(settings.salesforce, token, trigger))
    return checks


def _skipped_without_login(settings: Settings) -> list[Check]:
    reason = "needs the login, which failed"
    names = ["api version", "api budget"]
    for trigger in settings.triggers:
        if trigger.object is not None:
            names.append(f"trigger {trigger.name} object")
        if trigger.mode == "polling":
            continue
        if trigger.channel_kind == "pushtopic":
            names.append(f"trigger {trigger.name} pushtopic")
        names.append(f"trigger {trigger.name} channel")
    return [skipped(name, reason) for name in names]
