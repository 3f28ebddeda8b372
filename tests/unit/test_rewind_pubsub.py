"""Rewinds of a trigger on the Pub/Sub API: its replay ids are base64 text, stored as bytes."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sftriggerd.config.settings import TriggerSettings
from sftriggerd.sources.position import ReplayPosition, decode, encode, stream_resume
from sftriggerd.sources.rewind import RewindRefused, plan_rewind
from sftriggerd.store.replay import Selection

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
PUBSUB = TriggerSettings(name="accounts", object="Account", mode="streaming", transport="pubsub")
COMETD = TriggerSettings(name="accounts", object="Account", mode="streaming", transport="cometd")
REPLAY = bytes.fromhex("00000000000650db0000")  # opaque, and not 8 bytes long
TOKEN = base64.b64encode(REPLAY).decode()


def test_a_pubsub_trigger_rewinds_to_a_base64_replay_id() -> None:
    plan = plan_rewind(PUBSUB, f" {TOKEN} ", NOW)
    horizon = NOW - timedelta(hours=72)
    assert plan.position == ReplayPosition("/data/AccountChangeEvent", REPLAY, horizon)
    assert plan.resend == Selection(trigger="accounts", after_replay_token=TOKEN)
    assert plan.point == f"replay id {TOKEN}"
    # Stored as base64 in the checkpoint; read back, the subscription resumes after the bytes.
    stored = encode(plan.position)
    assert stored["replay_id"] == {"base64": TOKEN}
    resume = stream_resume(decode("accounts", stored), timedelta(minutes=5))
    assert resume is not None and resume.replay_id == REPLAY


def test_a_cometd_trigger_keeps_its_numeric_replay_ids() -> None:
    plan = plan_rewind(COMETD, "1234", NOW)
    assert plan.position.replay_id == 1234  # type: ignore[union-attr]
    assert plan.resend == Selection(trigger="accounts", after_replay_id=1234)
    with pytest.raises(RewindRefused, match="or give a replay id \\(digits\\)"):
        plan_rewind(COMETD, TOKEN, NOW)


def test_a_pubsub_trigger_still_rewinds_to_a_time() -> None:
    plan = plan_rewind(PUBSUB, "2h", NOW)
    assert plan.position == ReplayPosition(
        "/data/AccountChangeEvent", None, NOW - timedelta(hours=2)
    )
    assert plan_rewind(PUBSUB, "2026-12-03T10:00:00Z", NOW).position == plan.position


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1234", "whose replay ids are not numbers"),
        ("AAAA*", "in base64"),
        ("AAA", "in base64"),
        ("A" * 2000, "in base64"),
        ("yesterday", "is not a time"),
    ],
)
def test_what_is_no_pubsub_replay_id_is_refused_saying_why(text: str, reason: str) -> None:
    with pytest.raises(RewindRefused, match=reason):
        plan_rewind(PUBSUB, text, NOW)


def test_a_polled_trigger_has_no_replay_ids_whatever_its_transport() -> None:
    polled = TriggerSettings(name="p", object="Account", mode="polling")
    with pytest.raises(RewindRefused):
        plan_rewind(polled, TOKEN, NOW)


@given(
    st.one_of(
        st.text(max_size=40),
        st.binary(min_size=1, max_size=30).map(lambda raw: base64.b64encode(raw).decode()),
    )
)
def test_any_text_is_a_rewind_or_a_refusal(text: str) -> None:
    try:
        plan = plan_rewind(PUBSUB, text, NOW)
    except RewindRefused as exc:
        assert str(exc)
        return
    replay_id = plan.position.replay_id  # type: ignore[union-attr]
    assert replay_id is None or (
        isinstance(replay_id, bytes) and base64.b64encode(replay_id).decode() == text.strip()
    )
