"""One result line of `sftriggerd doctor`: what was checked, how it went, and the fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["ok", "warning", "failed", "skipped"]
# A skipped check could not run because one it needs failed: the run is not healthy.
UNHEALTHY: frozenset[Status] = frozenset({"failed", "skipped"})


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


def ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def warning(name: str, detail: str, fix: str = "") -> Check:
    return Check(name, "warning", detail, fix)


def failed(name: str, detail: str, fix: str = "") -> Check:
    return Check(name, "failed", detail, fix)


def skipped(name: str, reason: str) -> Check:
    return Check(name, "skipped", reason)


def healthy(checks: list[Check]) -> bool:
    return not any(check.status in UNHEALTHY for check in checks)
