"""Verifies a sftriggerd webhook with the Python standard library alone.

Usage: python3 verify.py vector.json  (exit 0 when the signature holds, 1 when not)

In a receiver, call `verify` with the request's raw body bytes, exactly as received (not a
re-serialised JSON object), and its webhook-id, webhook-timestamp and webhook-signature
headers; answer 2xx only after it returns True.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import time

TOLERANCE_S = 5 * 60  # refuse timestamps further than this from now: replayed requests


def verify(
    secret: str, msg_id: str, timestamp: str, body: bytes, signature_header: str, now_s: int
) -> bool:
    if not timestamp.isascii() or not timestamp.isdigit():
        return False
    if abs(now_s - int(timestamp)) > TOLERANCE_S:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.digest(key, signed, hashlib.sha256)).decode()
    # The header may hold several signatures (`v1,<a> v1,<b>`) while a secret is rotated:
    # one that matches is enough.
    for candidate in signature_header.split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected.encode()):
            return True
    return False


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as file:
        vector = json.load(file)
    ok = verify(
        vector["secret"],
        vector["id"],
        str(vector["timestamp"]),
        vector["body"].encode("utf-8"),
        vector["signature"],
        int(vector.get("now", time.time())),
    )
    print("verified" if ok else "NOT verified")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
