"""Rules that span fields or sections, checked on the raw data so that they are reported
together with field errors instead of only after those are fixed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..soql_engine import SoqlError, parse_condition
from .loader import YamlPath
from .transport import transport_problems

Problem = tuple[YamlPath, str]

# Platform events and generic channels carry no sObject; every other trigger names one.
_OBJECTLESS_PREFIXES = ("/event/", "/u/")


def cross_field_problems(data: Any) -> list[Problem]:
    if not isinstance(data, dict):
        return []
    triggers = _dict_items(data.get("triggers"))
    endpoints = _dict_items(data.get("endpoints"))
    return [
        *auth_problems(data),
        *_unique_names("triggers", triggers),
        *_unique_names("endpoints", endpoints),
        *_trigger_problems(triggers),
        *transport_problems(data),
        *_endpoint_references(endpoints, {_name(t) for _, t in triggers} - {None}),
    ]


def _dict_items(value: Any) -> list[tuple[int, dict[str, Any]]]:
    if not isinstance(value, list):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, dict)]


def _name(item: dict[str, Any]) -> str | None:
    name = item.get("name")
    return name if isinstance(name, str) else None


def _unique_names(section: str, items: list[tuple[int, dict[str, Any]]]) -> Iterator[Problem]:
    first_index: dict[str, int] = {}
    for index, item in items:
        name = _name(item)
        if name is None:
            continue
        if name in first_index:
            yield (
                (section, index, "name"),
                f"'{name}' is already used by {section}[{first_index[name]}]",
            )
        else:
            first_index[name] = index


def _trigger_problems(triggers: list[tuple[int, dict[str, Any]]]) -> Iterator[Problem]:
    for index, trigger in triggers:
        channel = trigger.get("channel")
        channel_text = channel if isinstance(channel, str) else ""
        objectless = channel_text.startswith(_OBJECTLESS_PREFIXES)
        mode = trigger.get("mode", "auto")
        if "object" not in trigger and not objectless:
            yield (
                ("triggers", index, "object"),
                "field required (only platform event /event/... and generic /u/... "
                "channels need no object)",
            )
        if objectless and mode == "polling":
            yield (
                ("triggers", index, "mode"),
                f"channel {channel_text} cannot be polled; use mode: streaming",
            )
        where = trigger.get("where")
        if isinstance(where, str) and mode != "polling":
            problem = _unevaluable(where)
            if problem is not None:
                yield (("triggers", index, "where"), problem)


def _unevaluable(where: str) -> str | None:
    """Why the daemon's evaluator cannot filter streamed changes by `where`, or None.

    A polling-only trigger is left alone: Salesforce reads its condition, all of SOQL."""
    try:
        parse_condition(where)
    except SoqlError as exc:
        lines = [line for line in exc.message.splitlines() if line.strip()]
        located = next((line for line in lines if line.startswith("ERROR at Row:")), None)
        column = f" (column {located.rsplit(':', 1)[1]})" if located else ""
        detail = lines[-1] if lines else exc.error_code
        return (
            f"cannot be evaluated on streamed changes: {detail}{column}"
            " (use mode: polling for SOQL beyond the evaluator's subset)"
        )
    return None


def _endpoint_references(
    endpoints: list[tuple[int, dict[str, Any]]], trigger_names: set[str | None]
) -> Iterator[Problem]:
    for index, endpoint in endpoints:
        wanted = endpoint.get("triggers")
        if not isinstance(wanted, list):
            continue
        for position, name in enumerate(wanted):
            if isinstance(name, str) and name not in trigger_names:
                known = ", ".join(sorted(n for n in trigger_names if n)) or "none defined"
                yield (
                    ("endpoints", index, "triggers", position),
                    f"no trigger named '{name}' (known: {known})",
                )


# What each authentication flow cannot do without (client_id is required for all of them).
_FLOW_NEEDS = {
    "password": ("client_secret", "username", "password"),
    "jwt": ("username", "private_key"),
    "client_credentials": ("client_secret",),
    "refresh_token": ("refresh_token",),
}


def auth_problems(data: Any) -> list[Problem]:
    salesforce = data.get("salesforce") if isinstance(data, dict) else None
    auth = salesforce.get("auth") if isinstance(salesforce, dict) else None
    if not isinstance(auth, dict):
        return []
    flow = auth.get("flow", "password")
    needs = _FLOW_NEEDS.get(flow, ()) if isinstance(flow, str) else ()
    return [
        (("salesforce", "auth", key), f"field required for the {flow} flow")
        for key in needs
        if auth.get(key) in (None, "")
    ]
