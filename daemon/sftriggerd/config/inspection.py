"""What commands that only inspect the store may leave unresolved in the file.

`deliveries list|show` and `triggers status` read the store, the server's address and the
names of triggers and endpoints; they never call Salesforce nor sign a webhook. So an
operator can run them where the secrets' variables are not set (a shell on the host, a
`kubectl exec` without the Secret): a `${...}` that cannot be resolved in the `salesforce`
section, an endpoint's `secret` or `headers`, or `server.admin_token` gets a stand-in, and
a `salesforce` section that got one is replaced whole by a placeholder nobody logs in with.
Everything else is checked as strictly as for `run`.
"""

from __future__ import annotations

import base64
from typing import Any

from .loader import YamlPath

# Decodes to 16 zero bytes: a valid Standard Webhooks secret that signs nothing real.
STAND_IN_SECRET = "whsec_" + base64.b64encode(bytes(16)).decode()
STAND_IN_TEXT = "(not resolved: this command does not read it)"
_PLACEHOLDER_SALESFORCE: dict[str, Any] = {
    "auth": {"flow": "client_credentials", "client_id": STAND_IN_TEXT, "client_secret": "-"}
}


def _stand_in_secret(index: object) -> str:
    # Each item of a secret list gets its own stand-in: the settings refuse two equal secrets.
    first = index % 256 if isinstance(index, int) else 0
    return "whsec_" + base64.b64encode(bytes([first]) + bytes(15)).decode()


def stand_in(path: YamlPath) -> str | None:
    """The text an unresolvable reference at `path` becomes; None where it is a problem."""
    if not path:
        return None
    if path[0] == "salesforce":
        return STAND_IN_TEXT
    if path == ("server", "admin_token"):
        return ""  # an empty token means none, which reading needs
    if path[0] == "endpoints" and len(path) >= 3:
        if path[2] == "secret":
            return _stand_in_secret(path[3] if len(path) > 3 else 0)
        if path[2] == "headers":
            return STAND_IN_TEXT
    return None


def settle(data: Any, stood_in: list[YamlPath]) -> None:
    """Replaces a `salesforce` section holding a stand-in by the placeholder, in place."""
    if isinstance(data, dict) and any(path[0] == "salesforce" for path in stood_in):
        data["salesforce"] = _PLACEHOLDER_SALESFORCE
