"""Plaintext Pub/Sub to a host that is not loopback is now taken with a warning line at
start. One letter wrong in the URL (`http://` for `https://` to Salesforce's own Pub/Sub
host, which only speaks TLS) then puts the access token on the internet in clear with the
first call's headers, and the daemon runs on: nothing can ever work over that URL, so there
is no emulator or test double to allow for, and the mistake must stop the config."""

from __future__ import annotations

import pytest

from sftriggerd.config import parse_settings
from sftriggerd.errors import ConfigError


@pytest.mark.parametrize(
    "url", ["http://api.pubsub.salesforce.com:7443", "http://API.PUBSUB.SALESFORCE.COM:443"]
)
def test_plaintext_to_salesforce_own_pubsub_host_is_refused(url: str) -> None:
    text = f"""
salesforce:
  login_url: https://login.salesforce.com
  auth: {{client_id: id, client_secret: secret, username: u@example.com, password: p}}
  transport: pubsub
  pubsub_url: {url}
store: {{url: "sqlite:///state.db"}}
triggers:
  - {{name: accounts, object: Account, mode: streaming}}
endpoints:
  - {{name: receiver, url: "https://hooks.example.com/in",
      secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}}
"""
    with pytest.raises((ConfigError, ValueError)):
        parse_settings(text, environ={})
