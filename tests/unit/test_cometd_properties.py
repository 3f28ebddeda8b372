"""Whatever a Bayeux server answers, the readers of the client and of the streaming loop
raise only their documented errors (TransportError, a BayeuxError), and the advice they
keep stays inside its bounds."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftriggerd.events.payload import POISON_TEXT_LIMIT
from sftriggerd.salesforce.cometd import (
    MAX_INTERVAL_MS,
    MAX_TIMEOUT_MS,
    RECONNECT_ADVICE,
    Advice,
    AuthInvalidError,
    BayeuxError,
    TransportError,
    UnknownClientError,
    classify_failure,
    is_successful,
    read_advice,
    read_answer,
    read_client_id,
    split_answer,
)
from sftriggerd.sources.stream_pacing import Pacer
from sftriggerd.sources.stream_reader import (
    MAX_REPLAY_ID,
    backoff_delay_s,
    immediate_once_delay_s,
    message_replay_id,
    poison_event,
)

# Every character, lone surrogates included: json.loads turns "\ud800" into one.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=30)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),  # json.loads reads NaN and Infinity
    ANY_TEXT,
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
ADVICE_KEYS = st.sampled_from(["interval", "timeout", "reconnect", "maxInterval"])
ADVICE = st.one_of(
    JSON,
    st.dictionaries(ADVICE_KEYS, JSON | st.sampled_from(["retry", "handshake", "none"])),
)
REPLY_KEYS = st.sampled_from(
    ["channel", "id", "successful", "error", "advice", "ext", "clientId", "data", "subscription"]
)


def replies() -> st.SearchStrategy[dict[str, Any]]:
    ext = st.dictionaries(
        st.sampled_from(["sfdc", "replay"]),
        JSON | st.dictionaries(st.just("failureReason"), JSON | st.just("401::Auth")),
    )
    values = JSON | ADVICE | ext | st.sampled_from(["/meta/connect", "1", "403::Unknown client"])
    return st.dictionaries(REPLY_KEYS | st.text(max_size=6), values, max_size=8)


@settings(max_examples=200, deadline=None)
@given(advice=ADVICE, interval=st.integers(0, MAX_INTERVAL_MS))
def test_advice_is_clamped_or_ignored(advice: Any, interval: int) -> None:
    current = Advice(reconnect="retry", interval_ms=interval, timeout_ms=110_000)
    read = read_advice(advice, current)
    assert read.reconnect in RECONNECT_ADVICE
    assert isinstance(read.interval_ms, int) and not isinstance(read.interval_ms, bool)
    assert 0 <= read.interval_ms <= MAX_INTERVAL_MS
    assert 0 <= read.timeout_ms <= MAX_TIMEOUT_MS
    kept = Advice()
    kept.update(advice)  # the client's own path: in place, same bounds
    assert 0 <= kept.interval_ms <= MAX_INTERVAL_MS and 0 <= kept.timeout_ms <= MAX_TIMEOUT_MS


@pytest.mark.parametrize(
    ("advice", "expected"),
    [
        ({"interval": "soon", "timeout": "never", "reconnect": 7}, Advice("retry", 250, 110_000)),
        ({"interval": -5, "timeout": -1}, Advice("retry", 0, 0)),
        ({"interval": 10**400, "timeout": math.inf}, Advice("retry", MAX_INTERVAL_MS, 110_000)),
        ({"interval": math.nan, "timeout": 2.5e3, "reconnect": "none"}, Advice("none", 250, 2500)),
        ({"interval": True, "reconnect": ["retry"]}, Advice("retry", 250, 110_000)),
        ("garbage", Advice("retry", 250, 110_000)),
    ],
)
def test_advice_examples(advice: Any, expected: Advice) -> None:
    assert read_advice(advice, Advice("retry", 250, 110_000)) == expected


@settings(max_examples=200, deadline=None)
@given(reply=replies())
def test_a_failed_reply_is_always_a_bayeux_error(reply: dict[str, Any]) -> None:
    error = classify_failure(reply)
    assert isinstance(error, BayeuxError)
    assert isinstance(error.code, str) and str(error)
    assert isinstance(is_successful(reply), bool)


@settings(max_examples=200, deadline=None)
@given(prefix=ANY_TEXT, where=st.sampled_from(["error", "channel", "failureReason"]))
def test_failure_text_carries_no_url_password(prefix: str, where: str) -> None:
    text = f"{prefix} via http://bob:pw-Zq9@proxy:3128/x"
    reply: dict[str, Any] = {"channel": "/meta/connect", "error": "400::bad"}
    if where == "failureReason":
        reply["ext"] = {"sfdc": {"failureReason": text}}
    else:
        reply[where] = text
    assert "pw-Zq9" not in str(classify_failure(reply))


def test_transport_errors_carry_no_url_password() -> None:
    error = TransportError("ClientProxyConnectionError: http://bob:pw-Zq9@proxy:3128 refused")
    assert "pw-Zq9" not in str(error) and "http://proxy:3128" in str(error)


def test_the_classification_of_known_failures() -> None:
    unknown = {"channel": "/meta/subscribe", "error": "403::Unknown client", "successful": False}
    assert isinstance(classify_failure(unknown), UnknownClientError)
    denied = {"error": "403::Handshake denied", "ext": {"sfdc": {"failureReason": "401::x"}}}
    assert isinstance(classify_failure(denied), AuthInvalidError)
    odd_ext = {"error": "403::Handshake denied", "ext": {"sfdc": "401::x"}}
    assert type(classify_failure(odd_ext)) is BayeuxError  # mistyped sfdc: no crash


@settings(max_examples=200, deadline=None)
@given(body=JSON | st.lists(replies(), max_size=4))
def test_an_answer_body_is_a_message_list_or_a_transport_error(body: Any) -> None:
    try:
        raw = json.dumps(body)
    except ValueError:
        return
    try:
        messages = read_answer(raw.encode())
    except TransportError:
        return
    assert isinstance(messages, list) and all(isinstance(m, dict) for m in messages)
    reply, events = split_answer(messages, "/meta/connect", "1")
    assert reply is None or reply.get("channel") == "/meta/connect"
    assert all(isinstance(e.get("channel"), str) for e in events)


@pytest.mark.parametrize(
    "raw",
    [b"", b"\xff\xfe\x00", b"[" * 100_000, b"[1e999999]", b"[" + b"9" * 5000 + b"]", b'{"a": 1}'],
)
def test_answers_that_are_not_message_lists(raw: bytes) -> None:
    with pytest.raises(TransportError):
        read_answer(raw)


@settings(max_examples=300, deadline=None)
@given(reply=replies())
def test_a_handshake_reply_gives_a_client_id_or_a_transport_error(reply: dict[str, Any]) -> None:
    try:
        client_id = read_client_id(reply)
    except TransportError:
        return
    assert isinstance(client_id, str) and client_id


def test_successful_means_json_true() -> None:
    assert is_successful({"successful": True})
    assert not is_successful({"successful": "true"})
    assert not is_successful({"successful": 1})
    assert not is_successful({})


@settings(max_examples=200, deadline=None)
@given(message=st.dictionaries(st.sampled_from(["data", "channel"]) | st.text(max_size=4), JSON))
def test_a_message_replay_id_is_a_position_or_none(message: dict[str, Any]) -> None:
    value = message_replay_id(message)
    assert value is None or (type(value) is int and 0 <= value <= MAX_REPLAY_ID)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"replayId": 12}, 12),
        ({"replayId": "12"}, None),
        ({"replayId": True}, None),
        ({"replayId": -3}, None),
        ({"replayId": 2**64}, None),
        ({"replayId": 1.5}, None),
        ("not an object", None),
    ],
)
def test_replay_id_examples(event: Any, expected: int | None) -> None:
    assert message_replay_id({"data": {"event": event}}) == expected
    assert message_replay_id({"data": "not an object"}) is None


@settings(max_examples=200, deadline=None)
@given(message=JSON, reason=ANY_TEXT, padding=st.integers(0, 3 * POISON_TEXT_LIMIT))
def test_a_poison_event_is_bounded_and_storable(message: Any, reason: str, padding: int) -> None:
    poison = poison_event("t", {"data": message, "pad": "x" * padding}, reason * 100)
    assert len(poison.message) <= POISON_TEXT_LIMIT + 64 and len(poison.reason) <= 6 * 500 + 64
    poison.message.encode()  # no lone surrogate left: any store can keep it
    poison.reason.encode()


def test_a_poison_reason_loses_url_passwords() -> None:
    poison = poison_event("t", {}, "bad value near http://bob:pw-Zq9@host/x")
    assert "pw-Zq9" not in poison.reason


@settings(max_examples=300, deadline=None)
@given(
    attempt=st.integers(-5, 10_000),
    base_s=st.floats(0.01, 5),
    cap_s=st.floats(0.01, 600),
    fraction=st.floats(0, 1),
)
def test_back_off_grows_is_capped_and_never_zero(
    attempt: int, base_s: float, cap_s: float, fraction: float
) -> None:
    def uniform(low: float, high: float) -> float:
        return low + (high - low) * fraction

    delay_s = backoff_delay_s(attempt, base_s=base_s, cap_s=cap_s, uniform=uniform)
    ceiling = min(cap_s, base_s * 2.0 ** min(max(attempt, 1) - 1, 32))
    assert ceiling / 2 <= delay_s <= ceiling <= cap_s
    again = immediate_once_delay_s(attempt, base_s=base_s, cap_s=cap_s, uniform=uniform)
    assert (again == 0) == (attempt <= 1)


def test_unknown_client_back_off_sequence() -> None:
    def top(low: float, high: float) -> float:
        return high

    delays = [immediate_once_delay_s(n, base_s=0.5, cap_s=4, uniform=top) for n in range(1, 8)]
    assert delays == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_the_pacer_forgets_failures_once_a_long_poll_is_answered() -> None:
    pacer = Pacer(cap_s=4)
    assert pacer.pause_s() == 0  # the routine, first re-handshake
    assert 0.25 <= pacer.pause_s() <= 0.5
    assert 1.0 <= pacer.back_off_s() <= 2.0  # the third failure in a row
    pacer.healthy()
    assert pacer.pause_s() == 0
