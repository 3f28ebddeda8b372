"""API usage from `Sforce-Limit-Info`, and the budget the poller asks before spending calls."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Both forms: `api-usage=10018/100000` and `api-usage=10018/100000; api-bursts=1/750`.
# ASCII digits, at most 18: `\d` would take other scripts' digits, and int() refuses more
# than 4,300 digits, so a hostile header could otherwise fail the call that carried it.
_API_USAGE = re.compile(r"api-usage=([0-9]{1,18})/([0-9]{1,18})(?![0-9])")


@dataclass(frozen=True)
class ApiUsage:
    used: int
    limit: int

    @property
    def ratio(self) -> float:
        return self.used / self.limit if self.limit else 1.0


def parse_limit_info(header: object) -> ApiUsage | None:
    """The org's API usage from `Sforce-Limit-Info`; None when absent or unreadable."""
    if not isinstance(header, str) or not header:
        return None
    match = _API_USAGE.search(header)
    if match is None:
        return None
    return ApiUsage(used=int(match.group(1)), limit=int(match.group(2)))


class ApiBudget:
    """The share of the org's daily API limit this daemon may use (`salesforce.api_budget`).

    Usage counts every client of the org, not only us: the header is the org's truth, so the
    budget is checked against it plus what we spent since the last answer.
    """

    def __init__(self, share: float) -> None:
        self.share = share
        self.usage: ApiUsage | None = None
        self._spent_since_update = 0

    def update(self, usage: ApiUsage) -> None:
        self.usage = usage
        self._spent_since_update = 0

    def record_call(self) -> None:
        self._spent_since_update += 1

    def may_spend(self, calls: int) -> bool:
        """Whether `calls` more calls keep the org's usage within our share of its limit."""
        if self.usage is None:
            return True  # unknown until the first answer; that answer will tell
        projected = self.usage.used + self._spent_since_update + calls
        return projected <= self.share * self.usage.limit

    @property
    def headroom_ratio(self) -> float:
        """How much of the budget is left, 0..1 (1 when usage is still unknown)."""
        if self.usage is None or self.usage.limit == 0:
            return 1.0
        allowed = self.share * self.usage.limit
        used = self.usage.used + self._spent_since_update
        return max(0.0, min(1.0, (allowed - used) / allowed)) if allowed else 0.0
