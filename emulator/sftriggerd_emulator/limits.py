"""The daily API request allocation and the `Sforce-Limit-Info` header that reports it.

Real orgs answer `api-usage=N/M` and sometimes `api-usage=N/M; api-bursts=1/750`; clients
that parse only the first form break on the second. By default the emulator alternates, so any
client tested against it meets both.
"""

from __future__ import annotations

from typing import Literal, get_args

HeaderStyle = Literal["alternate", "plain", "bursts"]
HEADER_STYLES: tuple[str, ...] = get_args(HeaderStyle)
DEFAULT_DAILY_MAX = 15_000
_BURSTS = "api-bursts=1/750"


class ApiUsage:
    """Counts REST calls against the daily maximum."""

    def __init__(self, daily_max: int = DEFAULT_DAILY_MAX, style: HeaderStyle = "alternate"):
        self.daily_max = daily_max
        self.used = 0
        self.style: HeaderStyle = style
        self._answers = 0

    @property
    def exhausted(self) -> bool:
        return self.used >= self.daily_max

    @property
    def remaining(self) -> int:
        return self.daily_max - self.used

    def count_call(self) -> None:
        self.used += 1

    def header(self) -> str:
        """The `Sforce-Limit-Info` value for the next answer."""
        self._answers += 1
        plain = f"api-usage={self.used}/{self.daily_max}"
        with_bursts = self.style == "bursts" or (
            self.style == "alternate" and self._answers % 2 == 0
        )
        return f"{plain}; {_BURSTS}" if with_bursts else plain

    def limits_resource(self) -> dict[str, dict[str, int]]:
        """The body of `GET /limits`: only the allocation the emulator really tracks."""
        return {"DailyApiRequests": {"Max": self.daily_max, "Remaining": self.remaining}}
