"""A JSON answer may spell a lone surrogate (`"\\ud800"`): valid JSON, parsed by Python into
a string that cannot be written as UTF-8. `sftriggerd doctor` prints Salesforce's words in
its report, so one such refusal ends the whole doctor in a UnicodeEncodeError traceback
with no report at all (`--json` escapes it and survives), where it should print every line,
that one failed. Real emulator over real HTTP, the doctor as a child process; the
middleware refuses the login."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web

from tests.acceptance.test_doctor import ACCOUNTS, doctor, write_config
from tests.hostile.stream_tamper import Handler
from tests.support.emulator import Middleware, RunningEmulator
from tests.support.receiver import Receiver

REFUSAL = b'{"error": "invalid_client", "error_description": "invalid client \\ud800"}'


@web.middleware
async def refusing_login(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path != "/services/oauth2/token":
        return await handler(request)
    return web.Response(status=400, body=REFUSAL, content_type="application/json")


@pytest.fixture
def emulator_middlewares() -> tuple[Middleware, ...]:
    return (refusing_login,)


async def test_a_lone_surrogate_in_a_refusal_is_a_failed_line_not_a_traceback(
    tmp_path: Path, emulator: RunningEmulator, receiver: Receiver
) -> None:
    config = write_config(tmp_path, emulator, receiver.url, triggers=ACCOUNTS)
    result = await doctor(config)
    assert "Traceback" not in result.stderr, result.stderr[-600:]
    assert result.returncode == 1
    assert "login (password)" in result.stdout
