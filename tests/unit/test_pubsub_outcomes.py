"""What the Pub/Sub transport reads from outside: statuses and `error-code` trailers (into
neutral outcomes), the Pub/Sub URL, and the org id of a token answer."""

from __future__ import annotations

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sftriggerd.salesforce.answers import org_id_of
from sftriggerd.salesforce.pubsub.client import PubSubSetupError, channel_options, target_of
from sftriggerd.sources.pubsub_outcomes import error_code, outcome_of, stream_ended
from sftriggerd.sources.transport import (
    ChannelUnavailable,
    Reauthenticate,
    Reconnect,
    ReplayExpired,
    TransportFailure,
    TransportOutcome,
)

PREFIX = "sfdc.platform.eventbus.grpc."
S = grpc.StatusCode
CALLS = st.sampled_from(["Subscribe", "GetTopic", "GetSchema"])
TRAILER_VALUES = st.one_of(st.text(max_size=200), st.binary(max_size=200))


@given(
    call=CALLS,
    status=st.sampled_from(list(S)),
    trailers=st.lists(st.tuples(st.text(max_size=20), TRAILER_VALUES), max_size=4),
    details=st.text(max_size=500),
    from_position=st.booleans(),
    established=st.booleans(),
)
def test_any_status_and_any_trailer_is_one_of_the_neutral_outcomes(
    call: str,
    status: grpc.StatusCode,
    trailers: list[tuple[str, str | bytes]],
    details: str,
    from_position: bool,
    established: bool,
) -> None:
    code = error_code(trailers)
    outcome = outcome_of(
        call, status, code, details, from_position=from_position, established=established
    )
    assert isinstance(outcome, TransportOutcome)
    assert status.name in str(outcome) and code in str(outcome)
    assert len(str(outcome)) < 400 + len(code)
    if isinstance(outcome, ReplayExpired):  # only ever for a subscribe from a stored position
        assert from_position and not established


@given(code=st.text(max_size=100), details=st.text(max_size=100))
def test_unauthenticated_is_reauthenticate_whatever_the_code(code: str, details: str) -> None:
    assert isinstance(outcome_of("Subscribe", S.UNAUTHENTICATED, code, details), Reauthenticate)


@pytest.mark.parametrize(
    ("status", "code", "from_position", "established", "expected"),
    [
        (S.UNAUTHENTICATED, "service.auth.error", False, True, Reauthenticate),
        (S.UNAVAILABLE, "service.auth.error", False, False, Reauthenticate),
        (S.INVALID_ARGUMENT, "subscription.fetch.replayid.corrupted", True, False, ReplayExpired),
        (
            S.INVALID_ARGUMENT,
            "subscription.fetch.replayid.corrupted",
            False,
            False,
            TransportFailure,
        ),
        (S.INVALID_ARGUMENT, "subscription.fetch.replayid.corrupted", True, True, TransportFailure),
        (
            S.INVALID_ARGUMENT,
            "subscription.fetch.replayid.validation.failed",
            True,
            False,
            ReplayExpired,
        ),
        (S.NOT_FOUND, "topic.not.found", False, False, ChannelUnavailable),
        (S.PERMISSION_DENIED, "topic.permission.denied", False, False, ChannelUnavailable),
        (S.INVALID_ARGUMENT, "subscription.fetch.topic.mismatch", False, True, TransportFailure),
        (S.RESOURCE_EXHAUSTED, "concurrent.client.limit.exceeded", False, False, TransportFailure),
        (S.RESOURCE_EXHAUSTED, "concurrent.client.limit.exceeded", False, True, TransportFailure),
        (S.UNAVAILABLE, "service.unavailable", False, False, TransportFailure),
        (S.UNAVAILABLE, "service.unavailable", False, True, Reconnect),
        (S.UNAVAILABLE, "", False, True, Reconnect),
        (S.CANCELLED, "", False, True, Reconnect),
        (S.INTERNAL, "subscription.internal.error", False, True, TransportFailure),
    ],
)
def test_salesforce_error_codes_become_their_outcomes(
    status: grpc.StatusCode,
    code: str,
    from_position: bool,
    established: bool,
    expected: type[TransportOutcome],
) -> None:
    outcome = outcome_of(
        "Subscribe",
        status,
        PREFIX + code if code else "",
        "Something went wrong. rpcId: 1f0c",
        from_position=from_position,
        established=established,
    )
    assert type(outcome) is expected
    assert str(outcome).startswith(f"Pub/Sub Subscribe failed: {status.name}")


def test_a_missing_topic_without_a_code_is_unavailable_only_for_topic_calls() -> None:
    assert isinstance(outcome_of("GetTopic", S.NOT_FOUND, "", ""), ChannelUnavailable)
    assert isinstance(outcome_of("GetSchema", S.NOT_FOUND, "", ""), TransportFailure)


def test_a_stream_closed_without_an_error_is_reconnect() -> None:
    ended = stream_ended(S.OK, "")
    assert isinstance(ended, Reconnect) and "closed the stream" in str(ended)


def test_the_error_code_trailer_is_found_whatever_its_case_and_type() -> None:
    assert error_code([("rpc-id", "x"), ("Error-Code", b" sfdc.x ")]) == "sfdc.x"
    assert error_code(None) == "" and error_code([("other", "y")]) == ""


@pytest.mark.parametrize(
    ("url", "target", "secure"),
    [
        ("https://api.pubsub.salesforce.com:7443", "api.pubsub.salesforce.com:7443", True),
        ("https://pubsub.example.com", "pubsub.example.com:443", True),
        ("http://127.0.0.1:50051", "127.0.0.1:50051", False),
        ("http://[::1]:50051", "[::1]:50051", False),
    ],
)
def test_pubsub_urls(url: str, target: str, secure: bool) -> None:
    assert target_of(url) == (target, secure)


@pytest.mark.parametrize(
    "url", ["grpc://host:1", "api.pubsub.salesforce.com:7443", "https://", "http://h:x"]
)
def test_unusable_pubsub_urls_are_setup_errors(url: str) -> None:
    with pytest.raises(PubSubSetupError):
        target_of(url)


def test_the_channel_pings_no_more_often_than_servers_allow_by_default() -> None:
    options = dict(channel_options())
    assert options["grpc.keepalive_time_ms"] >= 300_000
    assert options["grpc.keepalive_timeout_ms"] < options["grpc.keepalive_time_ms"]


@pytest.mark.parametrize(
    ("identity", "org"),
    [
        (
            "https://login.salesforce.com/id/00D5g000004ABCDEAA/0055g00000AbCdEAAZ",
            "00D5g000004ABCDEAA",
        ),
        ("http://127.0.0.1:8085/id/00DEM00000000012AA/005EM0000000001YAA", "00DEM00000000012AA"),
        ("https://test.salesforce.com/id/00D5g000004ABCD/0055g00000AbCdE", "00D5g000004ABCD"),
        ("https://login.salesforce.com/id/001000000000000AAA/005000000000000AAA", None),
        ("https://login.salesforce.com/services/oauth2/userinfo", None),
        (None, None),
        (42, None),
    ],
)
def test_the_org_id_is_read_from_the_identity_url(identity: object, org: str | None) -> None:
    assert org_id_of(identity) == org


@given(st.one_of(st.text(max_size=200), st.integers(), st.none(), st.lists(st.text())))
def test_any_identity_value_gives_an_org_id_or_none(identity: object) -> None:
    found = org_id_of(identity)
    assert found is None or (found.startswith("00D") and len(found) in (15, 18))


@pytest.mark.parametrize(
    ("answered", "expected"), [(False, ReplayExpired), (True, TransportFailure)]
)
def test_a_replay_id_refusal_is_expiry_until_the_stream_first_answers(
    answered: bool, expected: type[TransportOutcome]
) -> None:
    # Subscribed (the settle window passed) but not yet answered: a late refusal of the
    # stored position is still an expired position, not a fault to retry after it.
    outcome = outcome_of(
        "Subscribe",
        S.INVALID_ARGUMENT,
        PREFIX + "subscription.fetch.replayid.corrupted",
        "",
        from_position=True,
        established=True,
        answered=answered,
    )
    assert type(outcome) is expected
