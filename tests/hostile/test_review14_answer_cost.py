"""Review of issue 14's attempt history: every failing answer is cut down on the event loop
(the snippet for `last_error`, the excerpt for the history), and both remove URL user-info
first. A 4 KiB answer of letters and no `://` (what a receiver's HTML or a minified error
page is mostly made of) made that search quadratic: some 50 ms of a stalled event loop per
answer, during which no other endpoint, source or admin request moves."""

from __future__ import annotations

import time

import pytest

from sftriggerd.delivery.outcome import answer_excerpt, snippet
from sftriggerd.delivery.sender import BODY_PREFIX_BYTES
from sftriggerd.urls import strip_userinfo

ANSWERS = 10


@pytest.mark.parametrize(
    "body",
    [b"a" * BODY_PREFIX_BYTES, b"a1" * (BODY_PREFIX_BYTES // 2), b"x://" + b"b" * 4092],
)
def test_a_hostile_answer_is_cut_down_in_linear_time(body: bytes) -> None:
    started = time.perf_counter()
    for _ in range(ANSWERS):
        answer_excerpt(body, ("whsec_c2VjcmV0LXNlY3JldA==",))
        snippet(body, ("whsec_c2VjcmV0LXNlY3JldA==",))
    # Linear work is well under a millisecond per answer; the quadratic was ~50 ms.
    assert time.perf_counter() - started < 0.1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET https://u:p@h/x failed", "GET https://h/x failed"),
        ("1http://u:p@h/", "1http://h/"),
        ("see postgresql+asyncpg://sf:pa ss@db:5432/x", "see postgresql+asyncpg://db:5432/x"),
        ("a1b2c://u@h and ftp://x:y@z/", "a1b2c://h and ftp://z/"),
        ("no url here", "no url here"),
    ],
)
def test_user_info_is_still_removed(text: str, expected: str) -> None:
    assert strip_userinfo(text) == expected
