"""Review of issue 14's replay routes: a body nested deeper than Python's JSON decoder can
follow (well under aiohttp's 1 MiB body limit) is a 400 like any other body that is not
usable JSON, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.hostile.test_replay_requests import ReplayAdmin, assert_answered


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplayAdmin]:
    with ReplayAdmin(tmp_path_factory.mktemp("replay") / "state.db") as running:
        yield running


@pytest.mark.parametrize(
    "target",
    ["/api/deliveries/redrive", "/api/deliveries/resend", "/api/triggers/accounts/rewind"],
)
@pytest.mark.parametrize("nested", [b"[" * 200_000, b'{"to":' * 100_000])
def test_a_deeply_nested_body_is_a_400(admin: ReplayAdmin, target: str, nested: bytes) -> None:
    status, answer = admin.send(target, nested, "application/json")
    assert_answered(status, answer, target)
    assert status == 400 and json.loads(answer)["error"]
