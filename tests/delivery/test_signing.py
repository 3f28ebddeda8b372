"""The webhook headers verify with the public Standard Webhooks library, with one secret or
any of several (a rollover)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from sftriggerd import __version__
from sftriggerd.config.settings import decode_secret
from sftriggerd.delivery.signing import Signer, sign, signature_header, webhook_headers

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


# --- several secrets (rollover) ----------------------------------------------------------------

KEYS = st.lists(st.binary(min_size=16, max_size=64), min_size=1, max_size=6)


EVENT_IDS = st.text(st.characters(codec="ascii", exclude_characters=" \x00"), min_size=1)


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=4096), keys=KEYS, event_id=EVENT_IDS)
def test_any_body_is_signed_once_per_key_in_order(
    body: bytes, keys: list[bytes], event_id: str
) -> None:
    entries = webhook_headers(event_id, 1_700_000_000, body, keys)["webhook-signature"]
    signed = f"{event_id}.1700000000.".encode() + body
    expected = [hmac.new(key, signed, hashlib.sha256).digest() for key in keys]
    assert entries.split(" ") == ["v1," + base64.b64encode(sig).decode() for sig in expected]


@settings(max_examples=150, deadline=None)
@given(body=st.text(max_size=2048), keys=KEYS, event_id=EVENT_IDS)
def test_the_library_verifies_with_any_one_of_the_keys(
    body: str, keys: list[bytes], event_id: str
) -> None:
    # The library decodes the body as UTF-8 before verifying; ours is always JSON text.
    data = body.encode()
    headers = webhook_headers(event_id, int(time.time()), data, keys)
    for key in keys:
        Webhook(key).verify(data, headers, json_parse=False)


@settings(max_examples=100, deadline=None)
@given(body=st.binary(max_size=1024), keys=KEYS, stranger=st.binary(min_size=16, max_size=64))
def test_a_key_that_is_not_listed_never_verifies(
    body: bytes, keys: list[bytes], stranger: bytes
) -> None:
    assume(stranger not in keys)
    data = body.decode("utf-8", "replace").encode()
    headers = webhook_headers("evt_1", int(time.time()), data, keys)
    with pytest.raises(WebhookVerificationError):
        Webhook(stranger).verify(data, headers, json_parse=False)


def test_one_key_gives_the_same_header_as_a_list_of_it() -> None:
    now_s = int(time.time())
    assert webhook_headers("e", now_s, BODY, KEY) == webhook_headers("e", now_s, BODY, [KEY])


def test_signing_with_no_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one secret key"):
        Signer([])
    with pytest.raises(ValueError, match="at least one secret key"):
        signature_header("e", 1, BODY, ())
