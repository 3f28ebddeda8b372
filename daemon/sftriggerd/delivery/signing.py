"""The headers of one webhook attempt: Standard Webhooks signature plus our own.

Receivers verify with an off-the-shelf Standard Webhooks library, so the signed content is
exactly `{webhook-id}.{webhook-timestamp}.{body}` and the body bytes sent are the ones signed.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping, Sequence

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


def signature_header(
    event_id: str, timestamp_s: int, body: bytes, secret_keys: Sequence[bytes]
) -> str:
    """One `v1,<sig>` per key, space-separated in one header value, as the Standard Webhooks
    spec allows: a receiver holding any one of the keys verifies, so the endpoint's secret
    can be rolled over without a moment where the sender and receiver disagree."""
    if not secret_keys:
        raise ValueError("at least one secret key is needed to sign")
    return " ".join(sign(event_id, timestamp_s, body, key) for key in secret_keys)


class Signer:
    """One endpoint's headers: its configured ones and ours are merged once, so an attempt
    only adds its id, time and signature."""

    def __init__(
        self, secret_keys: Sequence[bytes], extra: Mapping[str, str] | None = None
    ) -> None:
        if not secret_keys:
            raise ValueError("at least one secret key is needed to sign")
        self._keys = tuple(secret_keys)
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
            "webhook-signature": signature_header(event_id, timestamp_s, body, self._keys),
            **self._fixed,
        }


def webhook_headers(
    event_id: str,
    timestamp_s: int,
    body: bytes,
    secret_keys: bytes | Sequence[bytes],
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Every header of one attempt, signed with one key or each of several; `extra` (the
    endpoint's configured headers) never wins."""
    keys = (secret_keys,) if isinstance(secret_keys, bytes) else tuple(secret_keys)
    return Signer(keys, extra).headers(event_id, timestamp_s, body)
