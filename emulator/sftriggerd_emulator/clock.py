"""The emulator's sense of time, and the way Salesforce writes it down.

Tests need to move time forward (retention, session idle expiry, recycle-bin purge) without
sleeping, and need equal `SystemModstamp` values on demand. So the clock is real time plus an
offset that only grows, and record stamping can be frozen at one instant.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?"
    r"(Z|[+-]\d{2}:?\d{2})?"
)


class EmulatorClock:
    """Real UTC time plus an offset; `stamp()` gives the whole-second time records carry."""

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._frozen_stamp: datetime | None = None

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    @property
    def offset_s(self) -> float:
        return self._offset.total_seconds()

    def advance(self, seconds: float) -> None:
        """Moves time forward; never back, because stamps and ids must stay ordered."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset += timedelta(seconds=seconds)

    @property
    def frozen_stamp(self) -> datetime | None:
        return self._frozen_stamp

    def freeze_stamps(self, at: datetime | None) -> None:
        """Every record written from now on is stamped `at` (None thaws the stamp)."""
        self._frozen_stamp = None if at is None else truncate_to_second(at)

    def stamp(self) -> datetime:
        """The CreatedDate/LastModifiedDate/SystemModstamp of a write happening now."""
        if self._frozen_stamp is not None:
            return self._frozen_stamp
        return truncate_to_second(self.now())


def truncate_to_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def truncate_to_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def format_datetime(moment: datetime) -> str:
    """`2013-05-20T20:49:32.000+0000`: UTC, milliseconds, no colon in the offset."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def parse_datetime(text: str) -> datetime:
    """Reads the ISO-8601 shapes clients send: `Z`, `+00:00`, `+0000`, with or without ms.

    A missing offset means UTC, as Salesforce assumes for API input.
    """
    match = _ISO.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"'{text}' is not an ISO-8601 date-time")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0").ljust(6, "0"))
    moment = datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro, UTC
    )
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        moment -= sign * offset
    return moment


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
