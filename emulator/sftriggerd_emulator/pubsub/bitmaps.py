"""changedFields, nulledFields and diffFields as Salesforce's Pub/Sub API sends them.

The CometD side lists field names (`Name`, `BillingAddress.City`); Pub/Sub sends bitmaps over
the positions of the event schema's fields instead: the first element, `0x...`, has bit i set
for the top-level field at position i (ChangeEventHeader is position 0); each compound field
with changed nested fields adds `N-0x...`, N being the compound field's position and the
bitmap over its nested record's fields. Hex digits are upper case, whole bytes, most
significant first, so bit 0 is the lowest bit of the last byte.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol


class SchemaField(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def parts(self) -> tuple[str, ...]: ...


def hex_bitmap(positions: Iterable[int]) -> str:
    value = 0
    for position in positions:
        value |= 1 << position
    size = max(1, (value.bit_length() + 7) // 8)
    return "0x" + value.to_bytes(size, "big").hex().upper()


def field_bitmaps(paths: Iterable[str], body_fields: Sequence[SchemaField]) -> list[str]:
    """The bitmap list for field `paths`; `body_fields` are the schema's fields after the
    header, so the field at index i sits at position i + 1. Unknown paths are left out."""
    top: set[int] = set()
    nested: dict[int, set[int]] = {}
    positions = {field.name: index + 1 for index, field in enumerate(body_fields)}
    for path in paths:
        parent, _, child = path.partition(".")
        position = positions.get(parent)
        if position is None:
            continue
        parts = body_fields[position - 1].parts
        if not child:
            top.add(position)
        elif child in parts:
            nested.setdefault(position, set()).add(parts.index(child))
    bitmaps = [hex_bitmap(top)] if top else []
    bitmaps += [f"{position}-{hex_bitmap(bits)}" for position, bits in sorted(nested.items())]
    return bitmaps
