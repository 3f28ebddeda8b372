"""A minimal reading of an event's Avro payload, until the full decoder is joined.

`decode_payload` has the signature of the full decoder (which also turns the CDC bitmaps
into field names and times into ISO text, as the CometD side carries them); this one only
reads the Avro record as fastavro gives it. Raises `PayloadError` for anything unreadable.
"""

from __future__ import annotations

import io
import json
from functools import lru_cache
from typing import Any

from fastavro import parse_schema, schemaless_reader

from ...errors import SftriggerdError


class PayloadError(SftriggerdError, ValueError):
    """The payload or its schema cannot be read."""


@lru_cache(maxsize=256)
def _parsed(schema_json: str) -> Any:
    return parse_schema(json.loads(schema_json))


def decode_payload(schema_json: str, payload: bytes) -> dict[str, Any]:
    try:
        record = schemaless_reader(io.BytesIO(payload), _parsed(schema_json), None)
    except Exception as exc:  # fastavro raises many kinds on foreign bytes; all mean "unreadable"
        raise PayloadError(f"the Avro payload cannot be read: {type(exc).__name__}: {exc}") from exc
    if not isinstance(record, dict):
        raise PayloadError("the Avro payload is not a record")
    return record
