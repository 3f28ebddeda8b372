"""The checks made with a logged-in REST client: the API version, the API budget left, and
for each trigger its object, fields, `where` condition and PushTopic."""

from __future__ import annotations

import difflib
from typing import Any

import aiohttp

from ..config.settings import TriggerSettings
from ..errors import SftriggerdError
from ..salesforce.answers import SalesforceApiError, Token, describe_exception
from ..salesforce.client import SalesforceClient
from ..salesforce.soql import literal
from .checks import Check, failed, ok, warning

# Below this share of the daily limit left, the budget is a warning.
LOW_BUDGET_RATIO = 0.1
_VERSION_TIMEOUT_S = 30.0


async def check_api_version(
    http: aiohttp.ClientSession, client: SalesforceClient, token: Token
) -> Check:
    name = "api version"
    wanted = client.api_version
    try:
        async with http.get(
            f"{token.instance_url}/services/data/",
            proxy=client.proxy,
            timeout=aiohttp.ClientTimeout(total=_VERSION_TIMEOUT_S),
        ) as response:
            served: Any = await response.json(content_type=None)
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
        return failed(name, f"cannot list the org's API versions: {describe_exception(exc)}")
    versions = (
        [str(item.get("version")) for item in served if isinstance(item, dict)]
        if isinstance(served, list)
        else []
    )
    if wanted in versions:
        return ok(name, f"v{wanted} (the org serves up to v{_newest(versions)})")
    if not versions:
        return failed(name, "the org listed no API versions")
    return failed(
        name,
        f"v{wanted} is not served by this org (it serves v{versions[0]} to v{_newest(versions)})",
        f"set salesforce.api_version to {_newest(versions)}",
    )


def _newest(versions: list[str]) -> str:
    return max(versions, key=lambda version: float(version) if _is_number(version) else 0.0)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


async def check_budget(client: SalesforceClient) -> Check:
    name = "api budget"
    try:
        limits = await client.limits()
    except SftriggerdError as exc:
        return failed(name, f"cannot read the org's limits: {exc}")
    daily = limits.get("DailyApiRequests")
    if not isinstance(daily, dict):
        return warning(name, "the limits answer has no DailyApiRequests")
    most, left = daily.get("Max"), daily.get("Remaining")
    if not isinstance(most, int) or not isinstance(left, int) or most <= 0:
        return warning(name, "the limits answer's DailyApiRequests is not readable")
    detail = f"{left} of {most} daily API requests left ({left / most:.0%})"
    if left <= 0:
        return failed(
            name, detail, "wait for the 24-hour window to free calls, or raise the org's limit"
        )
    share = client.budget.share
    if left < LOW_BUDGET_RATIO * most:
        return warning(
            name,
            f"{detail}; salesforce.api_budget lets this daemon use {share:.0%} of the limit",
            "find what else spends the org's API calls (Setup, System Overview)",
        )
    return ok(name, f"{detail}; salesforce.api_budget {share:.0%}")


async def check_object(client: SalesforceClient, trigger: TriggerSettings) -> list[Check]:
    """The object (describe) and every configured field; then the `where` condition."""
    assert trigger.object is not None, "only triggers naming an object"
    name = f"trigger {trigger.name} object"
    try:
        described = await client.describe(trigger.object)
    except SalesforceApiError as exc:
        if exc.status != 404:
            return [failed(name, f"cannot describe {trigger.object}: {exc}")]
        close = difflib.get_close_matches(trigger.object, await _object_names(client), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return [
            failed(
                name,
                f"{trigger.object} does not exist or this user cannot see it{hint}",
                "check the trigger's object (API name, with __c for a custom object) "
                "and the user's object permissions",
            )
        ]
    except SftriggerdError as exc:
        return [failed(name, f"cannot describe {trigger.object}: {exc}")]
    checks = [ok(name, f"{trigger.object} exists")]
    checks.append(_fields_check(trigger, described))
    if trigger.where:
        checks.append(await check_where(client, trigger))
    return checks


def _fields_check(trigger: TriggerSettings, described: dict[str, Any]) -> Check:
    name = f"trigger {trigger.name} fields"
    fields = described.get("fields")
    known = [
        str(field.get("name"))
        for field in (fields if isinstance(fields, list) else [])
        if isinstance(field, dict)
    ]
    if not trigger.fields:
        return ok(name, f"all fields ({len(known)})")
    by_lower = {field.lower() for field in known}
    missing = [field for field in trigger.fields if field.lower() not in by_lower]
    if not missing:
        return ok(name, ", ".join(trigger.fields))
    parts = []
    for field in missing:
        close = difflib.get_close_matches(field, known, n=2)
        parts.append(f"{field} (did you mean {' or '.join(close)}?)" if close else field)
    return failed(
        name,
        f"{trigger.object} has no field {', '.join(parts)}",
        "correct the trigger's fields (API names, with __c for custom fields), or give the "
        "user field-level access",
    )


async def check_where(client: SalesforceClient, trigger: TriggerSettings) -> Check:
    name = f"trigger {trigger.name} where"
    soql = f"SELECT Id FROM {trigger.object} WHERE {trigger.where} LIMIT 1"
    try:
        matching = await client.count(soql)
    except SalesforceApiError as exc:
        reason = _without_query(exc.sf_message, soql)
        return failed(
            name,
            f"Salesforce refused {soql!r}: {exc.error_code}: {reason}",
            "correct the trigger's where (SOQL, as after WHERE)",
        )
    except SftriggerdError as exc:
        return failed(name, f"cannot run {soql!r}: {exc}")
    return ok(name, f"runs ({'a record matches' if matching else 'no record matches yet'})")


def _without_query(message: str, soql: str) -> str:
    """Salesforce's SOQL error less its copy of the query and the caret under it."""
    kept = [
        line.strip()
        for line in message.splitlines()
        if line.strip() not in (soql, "^") and line.strip().strip("^ ")
    ]
    return " ".join(kept)


async def check_pushtopic(client: SalesforceClient, trigger: TriggerSettings) -> Check:
    channel = trigger.resolved_channel or ""
    topic = channel.removeprefix("/topic/").partition("?")[0]
    name = f"trigger {trigger.name} pushtopic"
    soql = f"SELECT Id FROM PushTopic WHERE Name = {literal(topic)}"
    fix = f"create the PushTopic {topic} (a PushTopic record with its Name and Query)"
    try:
        rows = [row async for row in client.query(soql)]
    except SalesforceApiError as exc:
        if exc.error_code == "INVALID_TYPE":  # an org where no PushTopic was ever made
            return failed(name, f"no PushTopic named {topic}", fix)
        return failed(name, f"cannot look up PushTopic {topic}: {exc}")
    except SftriggerdError as exc:
        return failed(name, f"cannot look up PushTopic {topic}: {exc}")
    if not rows:
        return failed(name, f"no PushTopic named {topic}", fix)
    return ok(name, f"PushTopic {topic} exists")


async def _object_names(client: SalesforceClient) -> list[str]:
    try:
        answer = await client.request_json("GET", "sobjects", kind="describe")
    except SftriggerdError:
        return []
    objects = answer.get("sobjects") if isinstance(answer, dict) else None
    return [
        str(item.get("name"))
        for item in (objects if isinstance(objects, list) else [])
        if isinstance(item, dict)
    ]
