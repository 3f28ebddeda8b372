"""`Retry-After` as a receiver sends it on 429 and 503: read without ever raising.

The header is outside input: `²` (a digit to `str.isdigit`, not to `int`), 5,000 digits
(over Python's integer-text limit), a negative number, an HTTP-date in the year 1 or 9999,
or garbage. Anything unusable is None, and the endpoint's own schedule applies instead.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

# Ten years: a larger Retry-After means "not soon", and max_age bounds it anyway.
MAX_RETRY_AFTER_S = 10 * 365 * 86400
# delay-seconds is ASCII digits only (RFC 9110 §10.2.3); a longer run than this is capped
# before `int()` reads it, so its length costs nothing.
_DELAY_SECONDS = re.compile(r"[0-9]+")
_LONGEST_DELAY_DIGITS = len(str(MAX_RETRY_AFTER_S))
# An HTTP-date is short; a longer header is not one, and is not parsed at all.
_LONGEST_DATE_CHARS = 64


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    """When the receiver asks to be tried again: `now` + delay-seconds (capped at ten
    years), or the HTTP-date in UTC; None when absent or unusable. A past date is returned
    as is: the caller never schedules before now."""
    if value is None:
        return None
    text = value.strip(" \t")
    if _DELAY_SECONDS.fullmatch(text):
        digits = text.lstrip("0") or "0"
        seconds = (
            MAX_RETRY_AFTER_S
            if len(digits) > _LONGEST_DELAY_DIGITS
            else min(int(digits), MAX_RETRY_AFTER_S)
        )
        return _plus(now, timedelta(seconds=seconds))
    if len(text) > _LONGEST_DATE_CHARS or not text.isascii():
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    # RFC 9110 dates are GMT; a date without a zone is read the same way.
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    try:
        return when.astimezone(UTC)
    except OverflowError:  # a zone pushing the year 1 or 9999 past the calendar
        return None


def _plus(now: datetime, delay: timedelta) -> datetime:
    try:
        return now + delay
    except OverflowError:
        return datetime.max.replace(tzinfo=now.tzinfo)
