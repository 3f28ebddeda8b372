"""Which transport streams a trigger's events: the Pub/Sub API or CometD.

`salesforce.transport` chooses for every streaming trigger (CometD by default, as before
Pub/Sub was supported); a trigger's own `transport` overrides it. Pub/Sub serves change
events and high-volume platform events only: Salesforce's Pub/Sub API guide ("Event Types")
says it does not support PushTopic events and generic streaming events, so `/topic/...`
and `/u/...` channels stay on CometD. `salesforce.pubsub_url` says where the Pub/Sub API
listens: `https://host:port` (TLS, Salesforce's endpoint by default) or `http://host:port`,
plaintext gRPC for the emulator and test doubles. Every call carries the access token, so
plaintext to a host that is not loopback (127.0.0.0/8, ::1, localhost) is warned about
(`plaintext_warning`: at start, by check-config and by doctor) unless
`salesforce.pubsub_allow_plaintext` says the operator means it. Warned, not refused: an
emulator or a test double in another container is reached by name, over plaintext.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator

from ..events.streamed import TransportName
from ..urls import strip_userinfo
from .loader import YamlPath

Transport = TransportName
TRANSPORTS: tuple[Transport, ...] = ("cometd", "pubsub")
DEFAULT_TRANSPORT: Transport = "cometd"
DEFAULT_PUBSUB_URL = "https://api.pubsub.salesforce.com:7443"
# Channels of the legacy streaming products, which only CometD serves.
COMETD_ONLY_PREFIXES = ("/topic/", "/u/")


@dataclass(frozen=True)
class PubSubEndpoint:
    """Where the gRPC channel connects: `target` is `host:port`; `tls` False for http://."""

    host: str
    port: int
    tls: bool

    @property
    def target(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def pubsub_endpoint(url: str) -> PubSubEndpoint:
    """The endpoint of a `pubsub_url`; raises ValueError saying what is wrong with it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        parts, port = None, None
    # The URL is named without its user info: a refused URL may carry a password there.
    usage = (
        f"'{strip_userinfo(url)}' is not a Pub/Sub API URL: use https://host:port "
        f"(Salesforce's is {DEFAULT_PUBSUB_URL}), or http://host:port for plaintext gRPC "
        "to an emulator or test double"
    )
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(usage)
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{usage} (no path, query or user)")
    if port is None:
        if parts.scheme == "http":
            raise ValueError(f"{usage} (plaintext needs the port)")
        port = 443
    if parts.scheme == "http" and is_salesforce_host(parts.hostname):
        # Salesforce speaks only TLS: plaintext there is a typo that would put the access
        # token on the internet in clear, never an emulator.
        raise ValueError(
            f"'{strip_userinfo(url)}' is plaintext to Salesforce, which serves the Pub/Sub API"
            " over TLS only: use https://"
        )
    return PubSubEndpoint(parts.hostname, port, tls=parts.scheme == "https")


# Salesforce's own domains: whatever serves there serves over TLS.
SALESFORCE_DOMAINS = ("salesforce.com", "force.com", "sfdc.net", "salesforce-sites.com")


def is_salesforce_host(host: str) -> bool:
    name = host.lower().rstrip(".")
    return any(name == domain or name.endswith("." + domain) for domain in SALESFORCE_DOMAINS)


def plaintext_warning(url: str, allowed: bool) -> str | None:
    """What to warn of when a valid `pubsub_url` sends the access token in clear across a
    network: plaintext to a host that is not loopback, not allowed by
    `salesforce.pubsub_allow_plaintext`. None when there is nothing to warn of."""
    endpoint = pubsub_endpoint(url)
    if endpoint.tls or allowed or is_loopback(endpoint.host):
        return None
    return (
        f"salesforce.pubsub_url '{strip_userinfo(url)}' is plaintext gRPC to {endpoint.host},"
        " which is not a loopback host (127.0.0.0/8, ::1, localhost): the access token"
        " crosses the network in clear. Use https://host:port, or set"
        " salesforce.pubsub_allow_plaintext: true if the network is trusted"
    )


def is_loopback(host: str) -> bool:
    """Whether `host` (as urlsplit gives it: no brackets, lower case) is this machine's
    loopback: `localhost`, 127.0.0.0/8, ::1 (also as an IPv4-mapped IPv6 address)."""
    if host in ("localhost", "localhost."):
        return True
    try:
        address = ip_address(host)
    except ValueError:
        return False  # a name other than localhost: it may resolve to anything
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _checked_pubsub_url(value: str) -> str:
    pubsub_endpoint(value)
    return value


PubSubUrl = Annotated[str, AfterValidator(_checked_pubsub_url)]


def resolve_transport(trigger_transport: Transport | None, default: Transport) -> Transport:
    """A trigger's transport: its own, or the salesforce section's."""
    return trigger_transport if trigger_transport is not None else default


def transport_problems(data: Any) -> Iterator[tuple[YamlPath, str]]:
    """Triggers whose transport cannot serve them, checked on the raw file data: a polling
    trigger naming a transport, and a legacy channel resolved to Pub/Sub."""
    salesforce = data.get("salesforce") if isinstance(data, dict) else None
    default = salesforce.get("transport") if isinstance(salesforce, dict) else None
    default = default if default in TRANSPORTS else DEFAULT_TRANSPORT
    triggers = data.get("triggers") if isinstance(data, dict) else None
    for index, trigger in enumerate(triggers if isinstance(triggers, list) else []):
        if not isinstance(trigger, dict):
            continue
        own = trigger.get("transport")
        if own is not None and trigger.get("mode") == "polling":
            yield (
                ("triggers", index, "transport"),
                "a polling trigger reads by SOQL queries and streams nothing; "
                "remove transport or use mode: streaming or auto",
            )
            continue
        channel = trigger.get("channel")
        resolved = own if own in TRANSPORTS else default
        if resolved == "pubsub" and isinstance(channel, str):
            if channel.startswith(COMETD_ONLY_PREFIXES):
                kind = "PushTopic" if channel.startswith("/topic/") else "generic streaming"
                yield (
                    ("triggers", index, "transport" if own is not None else "channel"),
                    f"channel {channel} is a {kind} channel, which the Pub/Sub API does not "
                    "serve; set transport: cometd on this trigger",
                )
