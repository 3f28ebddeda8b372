"""The doctor's report: one line per check, or one JSON document (`--json`).

A check's words are often Salesforce's or an endpoint's, which may quote our request back
(its Authorization header) or hold what no terminal can show, so both go through the log
redactor first: the report ends up in tickets and CI logs, as log lines do.
"""

from __future__ import annotations

import dataclasses
import json

from ..events.payload import escape_lone_surrogates
from ..logs import redactor
from .checks import Check, healthy


def shown(check: Check) -> Check:
    """`check` with the secrets of its detail and fix replaced (see `logs.redactor`)."""
    return dataclasses.replace(
        check, detail=redactor.scrub(check.detail), fix=redactor.scrub(check.fix)
    )


def as_text(checks: list[Check]) -> str:
    # A lone surrogate (valid in a JSON answer) cannot be written as UTF-8: print its escape.
    lines = [escape_lone_surrogates(line(shown(check))) for check in checks]
    failed = sum(check.status == "failed" for check in checks)
    warned = sum(check.status == "warning" for check in checks)
    skipped = sum(check.status == "skipped" for check in checks)
    lines.append(
        f"{len(checks)} checks: {failed} failed, {skipped} skipped, {warned} "
        + ("warning" if warned == 1 else "warnings")
        if not healthy(checks) or warned
        else f"{len(checks)} checks: all ok"
    )
    return "\n".join(lines)


def line(check: Check) -> str:
    """`failed   trigger accounts: ...; fix: ...` (the status padded so the names align)."""
    # One line each: Salesforce's SOQL errors quote the query over several lines.
    text = f"{check.status:<8} {check.name}: {_one_line(check.detail)}"
    return f"{text}; fix: {_one_line(check.fix)}" if check.fix else text


def _one_line(text: str) -> str:
    return " ".join(text.split())


def as_json(checks: list[Check]) -> str:
    return json.dumps(
        {"ok": healthy(checks), "checks": [shown(check).as_json() for check in checks]},
        indent=2,
    )
