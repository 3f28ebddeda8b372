"""changedFields, nulledFields and diffFields of a Pub/Sub change event, read as field names.

Pub/Sub sends each as a list of hex bitmaps over the positions of the event schema's fields
(Salesforce's "Event Deserialization Considerations" and the ChangeEventHeaderUtility of
forcedotcom/pub-sub-api): `0x...` sets bit i for the top-level field at position i
(ChangeEventHeader is position 0, bit 0 the lowest bit of the number); `N-0x...` sets bit i
for nested field i of the compound field at position N, named `Parent.Nested` as the CometD
side names it (`BillingAddress.City`, `Name.FirstName`). Names come top-level fields first,
each group in schema order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ...events.streamed import MalformedMessage
from .schema import FieldSpec

BITMAP_FIELDS = ("changedFields", "nulledFields", "diffFields")
_TOP_LEVEL = re.compile(r"0x([0-9A-Fa-f]+)")
_NESTED = re.compile(r"([0-9]{1,6})-0x([0-9A-Fa-f]+)")
# No Salesforce object has this many fields; a longer bitmap is not one.
_MAX_HEX_DIGITS = 4096


class UnreadableBitmap(MalformedMessage):
    """A bitmap that is not one of the two forms, or names a field the schema lacks."""


def field_names(header_field: str, bitmaps: object, fields: Sequence[FieldSpec]) -> list[str]:
    """The names `bitmaps` (one header field's list) stand for over the schema's `fields`."""
    if not isinstance(bitmaps, list) or not all(isinstance(b, str) for b in bitmaps):
        raise UnreadableBitmap(f"ChangeEventHeader.{header_field} is not a list of strings")
    top: list[str] = []
    nested: list[str] = []
    for bitmap in bitmaps:
        if match := _TOP_LEVEL.fullmatch(bitmap):
            top += [fields[i].name for i in _positions(header_field, match[1], len(fields))]
            continue
        match = _NESTED.fullmatch(bitmap)
        if match is None:
            raise UnreadableBitmap(
                f"ChangeEventHeader.{header_field} holds {bitmap[:64]!r}, "
                "neither a 0x... nor an N-0x... bitmap"
            )
        parent_position = int(match[1])
        if parent_position >= len(fields) or not fields[parent_position].parts:
            raise UnreadableBitmap(
                f"ChangeEventHeader.{header_field} names nested fields of position "
                f"{parent_position}, which is no compound field of the schema"
            )
        parent = fields[parent_position]
        positions = _positions(header_field, match[2], len(parent.parts))
        nested += [f"{parent.name}.{parent.parts[i].name}" for i in positions]
    return top + nested


def _positions(header_field: str, hex_digits: str, size: int) -> list[int]:
    """The set bits of a hex number, lowest first; each must be below `size`."""
    if len(hex_digits) > _MAX_HEX_DIGITS:
        raise UnreadableBitmap(f"ChangeEventHeader.{header_field} holds an overlong bitmap")
    value = int(hex_digits, 16)
    if value >> size:
        raise UnreadableBitmap(
            f"ChangeEventHeader.{header_field} sets bit {value.bit_length() - 1}, "
            f"past the {size} fields it can name"
        )
    return [i for i in range(size) if value >> i & 1]
