"""The headers of one webhook attempt: Standard Webhooks signature plus our own.

Receivers verify with an off-the-shelf Standard Webhooks library, so the signed content is
exactly `{webhook-id}.{webhook-timestamp}.{body}` and the body bytes sent are the ones signed.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping

from .. import __version__

USER_AGENT = f"sftriggerd/{__version__}"

# A configured header with one of these names would break the signature, the framing or
# the contract, so the endpoint's `headers` cannot replace them.
RESERVED_HEADERS = frozenset(
    {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "content-type",
        "content-length",
        "transfer-encoding",
        "user-agent",
    }
)


def sign(event_id: str, timestamp_s: int, body: bytes, secret_key: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` of `{id}.{timestamp}.{body}`."""
    signed = f"{event_id}.{timestamp_s}.".encode() + body
    return "v1," + base64.b64encode(hmac.digest(secret_key, signed, "sha256")).decode("ascii")


class Signer:
    """One endpoint's headers: its configured ones and ours are merged once, so an attempt
    only adds its id, time and signature."""

    def __init__(self, secret_key: bytes, extra: Mapping[str, str] | None = None) -> None:
        self._key = secret_key
        # The configured headers never win over ours (RESERVED_HEADERS).
        self._fixed = {
            name: value
            for name, value in (extra or {}).items()
            if name.lower() not in RESERVED_HEADERS
        }
        self._fixed.update({"content-type": "application/json", "user-agent": USER_AGENT})

    def headers(self, event_id: str, timestamp_s: int, body: bytes) -> dict[str, str]:
        """Every header of the attempt."""
        return {
            "webhook-id": event_id,
            "webhook-timestamp": str(timestamp_s),
            "webhook-signature": sign(event_id, timestamp_s, body, self._key),
            **self._fixed,
        }


def webhook_headers(
    event_id: str,
    timestamp_s: int,
    body: bytes,
    secret_key: bytes,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Every header of one attempt; `extra` (the endpoint's configured headers) never wins."""
    return Signer(secret_key, extra).headers(event_id, timestamp_s, body)
