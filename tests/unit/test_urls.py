from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sftriggerd.urls import strip_userinfo


def test_proxy_credentials_leave_error_text() -> None:
    text = "Cannot connect to host proxy:3128 via http://bob:s3cr%40t!@proxy.internal:3128 [x]"
    assert strip_userinfo(text) == (
        "Cannot connect to host proxy:3128 via http://proxy.internal:3128 [x]"
    )
    assert strip_userinfo("postgresql://u:p@db/x and https://h/p?a=b@c") == (
        "postgresql://db/x and https://h/p?a=b@c"
    )


@settings(max_examples=300, deadline=None)
@given(
    user=st.text(st.characters(blacklist_characters="/\n")),
    around=st.text(),
)
def test_no_password_survives(user: str, around: str) -> None:
    secret = f"{user}:pw-Zq9"
    out = strip_userinfo(f"{around} http://{secret}@host:1/{around}")
    assert "pw-Zq9@" not in out and "http://host:1/" in out


def test_a_triggers_last_error_is_shown_without_user_info() -> None:
    """/api/triggers and the status page show `last_error` to anyone who reaches them."""
    from sftriggerd.sources.status import TriggerStatus

    status = TriggerStatus(name="t", mode="streaming", mode_reason="configured")
    status.last_error = "Cannot connect to host proxy:3128 via http://sync:s3cret@proxy:3128"
    assert status.as_json()["last_error"] == (
        "Cannot connect to host proxy:3128 via http://proxy:3128"
    )
