"""salesforce.transport, salesforce.pubsub_url and triggers[].transport: defaults, the
transport each trigger resolves to, and the combinations check-config refuses."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sftriggerd.config import parse_settings
from sftriggerd.config.transport import PubSubEndpoint, plaintext_warning, pubsub_endpoint
from sftriggerd.errors import ConfigError
from sftriggerd.salesforce.pubsub.client import PubSubClient
from sftriggerd.salesforce.session import SalesforceSession

HEAD = """
salesforce:
  auth: {flow: client_credentials, client_id: cid, client_secret: cs}
"""
# The client reads its URL when made and its session only when it calls: none is made here.
SESSION = cast(SalesforceSession, object())


def config(salesforce: str = "", triggers: str = "") -> str:
    text = HEAD + "".join(f"  {line}\n" for line in salesforce.splitlines())
    return text + ("triggers:\n" + triggers if triggers else "")


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, "c.yaml", {})
    return caught.value.problems


TRIGGERS = """\
  - {name: plain, object: Account}
  - {name: own, object: Contact, transport: cometd}
  - {name: polled, object: Lead, mode: polling}
  - {name: event, channel: /event/Order__e}
  - {name: topic, channel: /topic/Hot, object: Account, transport: cometd}
"""


def test_cometd_stays_the_default_and_every_streaming_trigger_learns_its_transport() -> None:
    settings = parse_settings(config(triggers=TRIGGERS), "c.yaml", {})
    assert settings.salesforce.transport == "cometd"
    assert settings.salesforce.pubsub_url == "https://api.pubsub.salesforce.com:7443"
    transports = {t.name: t.transport for t in settings.triggers}
    assert transports == {
        "plain": "cometd",
        "own": "cometd",
        "polled": None,
        "event": "cometd",
        "topic": "cometd",
    }


def test_a_trigger_overrides_the_salesforce_transport() -> None:
    settings = parse_settings(config("transport: pubsub", TRIGGERS), "c.yaml", {})
    transports = {t.name: t.transport for t in settings.triggers}
    assert transports == {
        "plain": "pubsub",
        "own": "cometd",
        "polled": None,
        "event": "pubsub",
        "topic": "cometd",
    }
    assert [t.resolved_transport for t in settings.triggers][:2] == ["pubsub", "cometd"]


def test_legacy_channels_on_pubsub_are_refused_where_the_choice_was_made() -> None:
    triggers = """\
  - {name: topic, channel: /topic/Hot, object: Account}
  - {name: generic, channel: /u/Notes, transport: pubsub}
  - {name: polled, object: Lead, mode: polling, transport: cometd}
  - {name: fine, channel: /data/AccountChangeEvent, object: Account}
"""
    assert problems_of(config("transport: pubsub", triggers)) == [
        "c.yaml:6: triggers[0].channel: channel /topic/Hot is a PushTopic channel, which the "
        "Pub/Sub API does not serve; set transport: cometd on this trigger",
        "c.yaml:7: triggers[1].transport: channel /u/Notes is a generic streaming channel, "
        "which the Pub/Sub API does not serve; set transport: cometd on this trigger",
        "c.yaml:8: triggers[2].transport: a polling trigger reads by SOQL queries and streams "
        "nothing; remove transport or use mode: streaming or auto",
    ]


def test_unknown_transports_are_refused() -> None:
    problems = problems_of(config("transport: grpc", "  - {name: a, object: A, transport: x}\n"))
    assert problems == [
        "c.yaml:4: salesforce.transport: input should be 'cometd' or 'pubsub'",
        "c.yaml:6: triggers[0].transport: input should be 'cometd' or 'pubsub'",
    ]


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        (
            "https://api.pubsub.salesforce.com:7443",
            PubSubEndpoint("api.pubsub.salesforce.com", 7443, tls=True),
        ),
        ("https://pubsub.example.com", PubSubEndpoint("pubsub.example.com", 443, tls=True)),
        ("http://127.0.0.1:50051", PubSubEndpoint("127.0.0.1", 50051, tls=False)),
        ("http://[::1]:50051/", PubSubEndpoint("::1", 50051, tls=False)),
    ],
)
def test_pubsub_urls_name_a_tls_or_plaintext_endpoint(url: str, endpoint: PubSubEndpoint) -> None:
    assert pubsub_endpoint(url) == endpoint
    assert parse_settings(config(f"pubsub_url: {url!r}"), "c.yaml", {}).salesforce.pubsub_url == url


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5:7011",
        "http://pubsub.example.com:7011",
        "http://[2001:db8::1]:7011",
        "http://127.0.0.1.example.com:7011",
        "http://localhost.example.com:7011",
        "http://0.0.0.0:7011",
    ],
)
def test_plaintext_to_a_host_that_is_not_loopback_is_taken_with_a_warning_naming_the_setting(
    url: str,
) -> None:
    # Taken: an emulator or test double in another container is reached by name.
    salesforce = parse_settings(config(f"pubsub_url: {url!r}"), "c.yaml", {}).salesforce
    assert not pubsub_endpoint(url).tls
    assert PubSubClient(SESSION, url).url == url
    warned = salesforce.pubsub_plaintext_warning
    assert warned is not None and "not a loopback host" in warned and "in clear" in warned
    assert "salesforce.pubsub_allow_plaintext: true" in warned


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:50051",
        "http://127.8.9.10:50051",
        "http://[::1]:50051",
        "http://[::ffff:127.0.0.1]:50051",
        "http://localhost:50051",
        "http://LocalHost:50051",
    ],
)
def test_plaintext_to_a_loopback_host_is_taken_without_a_warning(url: str) -> None:
    salesforce = parse_settings(config(f"pubsub_url: {url!r}"), "c.yaml", {}).salesforce
    assert salesforce.pubsub_url and salesforce.pubsub_plaintext_warning is None
    assert not pubsub_endpoint(url).tls
    assert PubSubClient(SESSION, url).url == url


def test_the_opt_in_silences_the_warning() -> None:
    text = config("pubsub_allow_plaintext: true\npubsub_url: http://10.0.0.5:7011")
    salesforce = parse_settings(text, "c.yaml", {}).salesforce
    assert salesforce.pubsub_allow_plaintext is True
    assert salesforce.pubsub_plaintext_warning is None
    assert pubsub_endpoint(salesforce.pubsub_url).target == "10.0.0.5:7011"
    assert PubSubClient(SESSION, salesforce.pubsub_url).url
    # Off by default; and written after the URL in the file, it still counts.
    assert parse_settings(config(), "c.yaml", {}).salesforce.pubsub_allow_plaintext is False
    after = config("pubsub_url: http://10.0.0.5:7011\npubsub_allow_plaintext: true")
    assert parse_settings(after, "c.yaml", {}).salesforce.pubsub_url == "http://10.0.0.5:7011"


@given(st.ip_addresses(), st.integers(min_value=1, max_value=65535))
def test_plaintext_is_taken_exactly_for_loopback_addresses(
    address: IPv4Address | IPv6Address, port: int
) -> None:
    host = f"[{address}]" if address.version == 6 else str(address)
    loopback = address.is_loopback or (
        isinstance(address, IPv6Address)
        and address.ipv4_mapped is not None
        and address.ipv4_mapped.is_loopback
    )
    url = f"http://{host}:{port}"
    endpoint = pubsub_endpoint(url)
    assert endpoint.port == port and not endpoint.tls
    warned = plaintext_warning(url, allowed=False)
    assert (warned is None) == loopback
    assert plaintext_warning(url, allowed=True) is None


def test_the_target_brackets_ipv6_hosts() -> None:
    assert pubsub_endpoint("http://[::1]:50051").target == "[::1]:50051"
    assert pubsub_endpoint("https://h:7443").target == "h:7443"


@pytest.mark.parametrize(
    "url",
    [
        "api.pubsub.salesforce.com:7443",
        "grpc://h:1",
        "http://h",
        "https://h:7443/eventbus",
        "https://u:p@h:7443",
        "https://h:99999",
        "https://h:7443?x=1",
        "https://:7443",
    ],
)
def test_other_pubsub_urls_are_refused_with_the_forms_to_use(url: str) -> None:
    [problem] = problems_of(config(f"pubsub_url: {url!r}"))
    assert problem.startswith("c.yaml:4: salesforce.pubsub_url: ")
    assert "https://host:port" in problem and "http://host:port" in problem


@pytest.mark.parametrize(
    "url", ["https://u:s3cret-pw@h:7443", "http://u:s3cret-pw@h:7443/x", "grpc://u:s3cret-pw@h"]
)
def test_a_refused_url_is_named_without_its_password(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        pubsub_endpoint(url)
    assert "s3cret-pw" not in str(caught.value)
    [problem] = problems_of(config(f"pubsub_url: {url!r}"))
    assert "s3cret-pw" not in problem


@given(st.text(max_size=60))
def test_any_text_is_an_endpoint_or_a_value_error(url: str) -> None:
    try:
        endpoint = pubsub_endpoint(url)
    except ValueError as exc:
        assert "Pub/Sub API URL" in str(exc)
    else:
        assert endpoint.host and 0 <= endpoint.port <= 65535
