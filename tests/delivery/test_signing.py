"""The webhook headers verify with the public Standard Webhooks library."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from sftriggerd import __version__
from sftriggerd.config.settings import decode_secret
from sftriggerd.delivery.signing import sign, webhook_headers

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
KEY = decode_secret(SECRET)
BODY = b'{"id":"evt_1","type":"account.updated","record":{"Name":"Acme \xc3\xa9"}}'


def test_headers_verify_with_the_standard_webhooks_library() -> None:
    now_s = int(time.time())
    headers = webhook_headers("evt_1", now_s, BODY, KEY)
    assert Webhook(SECRET).verify(BODY, headers)["id"] == "evt_1"
    assert headers["webhook-id"] == "evt_1"
    assert headers["webhook-timestamp"] == str(now_s)
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == f"sftriggerd/{__version__}"


def test_a_changed_body_or_another_secret_does_not_verify() -> None:
    headers = webhook_headers("evt_1", int(time.time()), BODY, KEY)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(BODY.replace(b"Acme", b"Acne"), headers)
    other = "whsec_" + base64.b64encode(b"another key of 32 bytes, really!").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(BODY, headers)


def test_signature_is_hmac_sha256_of_id_timestamp_and_body() -> None:
    expected = hmac.new(KEY, b"evt_9.1700000000." + BODY, hashlib.sha256).digest()
    assert sign("evt_9", 1_700_000_000, BODY, KEY) == "v1," + base64.b64encode(expected).decode()


def test_configured_headers_are_added_but_never_override_ours() -> None:
    extra = {
        "Authorization": "Bearer abc",
        "X-Tenant": "acme",
        "Webhook-Id": "forged",
        "WEBHOOK-SIGNATURE": "v1,forged",
        "Content-Type": "text/plain",
        "User-Agent": "curl",
        "Content-Length": "1",
    }
    headers = webhook_headers("evt_1", int(time.time()), BODY, KEY, extra)
    lowered = {name.lower(): value for name, value in headers.items()}
    assert len(lowered) == len(headers)  # no name is there twice in another case
    assert lowered["authorization"] == "Bearer abc" and lowered["x-tenant"] == "acme"
    assert lowered["webhook-id"] == "evt_1"
    assert lowered["content-type"] == "application/json"
    assert lowered["user-agent"].startswith("sftriggerd/")
    assert "content-length" not in lowered
    Webhook(SECRET).verify(BODY, headers)
