"""Salesforce-shaped record ids: a key prefix per object, strictly increasing per object.

An id is 15 characters (3 key prefix, 2 fixed "EM" standing where Salesforce puts its pod, 10
counter digits) plus the 3-character checksum that makes the 18-character form. The counter
uses digits and upper-case letters only: string order then equals creation order whether a
comparison folds case or not (the SOQL engine folds it, as it must for text fields), so
`ORDER BY Id` and keyset pagination on Id behave as they do on a real org.
"""

from __future__ import annotations

from typing import Any

DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_POD = "EM"
_COUNTER_DIGITS = 10

STANDARD_KEY_PREFIXES = {
    "Account": "001",
    "Contact": "003",
    "Opportunity": "006",
    "Lead": "00Q",
    "Case": "500",
    "Task": "00T",
    "Event": "00U",
    "Campaign": "701",
    "Contract": "800",
    "Order": "801",
    "Asset": "02i",
    "Product2": "01t",
    "User": "005",
    "Organization": "00D",
}


def to_digits(number: int, width: int) -> str:
    """`number` in base 36 (0-9, A-Z), zero-padded to `width`."""
    digits: list[str] = []
    rest = number
    while rest:
        rest, digit = divmod(rest, len(DIGITS))
        digits.append(DIGITS[digit])
    text = "".join(reversed(digits)) or "0"
    if len(text) > width:
        raise OverflowError(f"{number} does not fit in {width} digits")
    return text.rjust(width, "0")


def checksum(id15: str) -> str:
    """The 3-character suffix: one bit per upper-case letter in each 5-character chunk."""
    suffix = ""
    for start in (0, 5, 10):
        bits = 0
        for position, char in enumerate(id15[start : start + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix += _CHECKSUM_ALPHABET[bits]
    return suffix


def make_id(key_prefix: str, number: int) -> str:
    id15 = key_prefix + _POD + to_digits(number, _COUNTER_DIGITS)
    return id15 + checksum(id15)


def to_id18(record_id: str) -> str | None:
    """The 18-character form of a 15- or 18-character id, or None when it is not id-shaped."""
    if len(record_id) == 15 and record_id.isalnum():
        return record_id + checksum(record_id)
    if len(record_id) == 18 and record_id.isalnum():
        return record_id[:15] + checksum(record_id[:15])
    return None


class IdAllocator:
    """Hands out key prefixes and ids; its state is persisted so ids keep increasing."""

    def __init__(self) -> None:
        self._counters: dict[str, int] = {}
        self._custom_prefixes = 0

    def new_key_prefix(self, object_name: str) -> str:
        """The standard prefix for a standard object, else the next `a0X` custom prefix."""
        standard = STANDARD_KEY_PREFIXES.get(object_name)
        if standard is not None:
            return standard
        prefix = "a" + to_digits(self._custom_prefixes, 2)  # a00, a01, ... a0Z, a10, ...
        self._custom_prefixes += 1
        return prefix

    def next_id(self, key_prefix: str) -> str:
        number = self._counters.get(key_prefix, 0) + 1
        self._counters[key_prefix] = number
        return make_id(key_prefix, number)

    def state(self) -> dict[str, Any]:
        return {"counters": dict(self._counters), "custom_prefixes": self._custom_prefixes}

    def restore(self, state: dict[str, Any]) -> None:
        self._counters = {str(k): int(v) for k, v in state.get("counters", {}).items()}
        self._custom_prefixes = int(state.get("custom_prefixes", 0))
