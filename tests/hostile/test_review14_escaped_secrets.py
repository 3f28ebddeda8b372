"""Review of issue 14's attempt history: a receiver that echoes our secrets back in JSON
written by an encoder that escapes `/` (PHP's json_encode does by default) must not leave
what follows the first `/` of a secret in the answer excerpt or the error snippet."""

from __future__ import annotations

import json

import pytest

from sftriggerd.delivery.outcome import answer_excerpt, snippet

# A Standard Webhooks secret whose base64 holds slashes, and a header value that does too.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw/aB+cD/eF0gH1iJ="
HEADER = "Bearer tok/en-of/the-receiver-0123456789"


def php_json(value: object) -> bytes:
    return json.dumps(value).replace("/", "\\/").encode()


@pytest.mark.parametrize("read", [answer_excerpt, snippet])
@pytest.mark.parametrize(
    "echo",
    [
        {"expected_secret": SECRET},
        {"key": SECRET.removeprefix("whsec_")},
        {"headers": {"Authorization": HEADER}},
    ],
)
def test_slash_escaped_secrets_leave_no_part_behind(read: object, echo: object) -> None:
    assert callable(read)
    secrets = (SECRET, SECRET.removeprefix("whsec_"), HEADER)
    text = read(php_json(echo), secrets)
    for secret in secrets:
        for part in secret.split("/")[1:]:
            assert part not in text, text
