"""The token endpoint over real HTTP: every grant, its refusals, and session idle expiry."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest

from sftriggerd.errors import ConfigError
from sftriggerd_emulator.context import EmulatorSettings
from sftriggerd_emulator.identity import load_users_file
from tests.keys import rsa_key_pair
from tests.support.emulator import RunningEmulator
from tests.support.sfclient import DEFAULT_LOGIN, OrgClient, control, token_request

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


APP_PRIVATE, APP_PUBLIC = rsa_key_pair()
USER_PRIVATE, USER_PUBLIC = rsa_key_pair()
OTHER_PRIVATE, _ = rsa_key_pair()


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    users = [
        {"username": "token@emulator.local", "password": "secret", "security_token": "TOK123"},
        {"username": "jwt@emulator.local", "password": "x", "jwt_public_key": USER_PUBLIC},
    ]
    users_file = tmp_path / "users.json"
    users_file.write_text(json.dumps(users))
    return EmulatorSettings(
        state_dir=tmp_path / "org",
        users_file=users_file,
        jwt_public_key_pem=APP_PUBLIC,
        session_idle_s=60,
    )


def _assertion(private_key: str = APP_PRIVATE, **claims: Any) -> str:
    payload = {
        "iss": "emulator-client",
        "sub": "admin@emulator.local",
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 180,
    } | claims
    return jwt.encode(payload, private_key, algorithm="RS256")


async def test_password_login_answers_salesforce_token_body(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    before_ms = int(time.time() * 1000)
    answer = await token_request(http, emulator.url, DEFAULT_LOGIN)
    assert answer.status == 200
    body = answer.body
    assert set(body) == {
        "access_token",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
        "signature",
    }
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == emulator.url
    assert body["access_token"].startswith("00DEM0000000001!")
    assert body["id"] == f"{emulator.url}/id/00DEM00000000012AA/005EM0000000001YAA"
    assert isinstance(body["issued_at"], str)
    assert before_ms <= int(body["issued_at"]) <= int(time.time() * 1000)
    expected = hmac.new(
        b"emulator-secret", (body["id"] + body["issued_at"]).encode(), hashlib.sha256
    ).digest()
    assert base64.b64decode(body["signature"]) == expected


async def test_login_host_sends_the_client_to_the_instance_host(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    port = emulator.ctx.settings.port
    answer = await token_request(http, f"http://localhost:{port}", DEFAULT_LOGIN)
    assert answer.status == 200
    assert answer.body["instance_url"] == f"http://127.0.0.1:{port}"
    assert answer.body["id"].startswith(f"http://localhost:{port}/id/")


async def test_identity_url_answers_for_its_user(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    login = await token_request(http, emulator.url, DEFAULT_LOGIN)
    headers = {"Authorization": f"Bearer {login.body['access_token']}"}
    async with http.get(login.body["id"], headers=headers) as response:
        identity = await response.json()
    assert identity["username"] == "admin@emulator.local"
    assert identity["organization_id"] == "00DEM00000000012AA"
    async with http.get(login.body["id"], headers={"Authorization": "Bearer nope"}) as response:
        assert response.status == 403
        assert await response.text() == "Bad_OAuth_Token"


@pytest.mark.parametrize(
    ("overrides", "error", "description"),
    [
        ({"password": "wrong"}, "invalid_grant", "authentication failure"),
        ({"username": "nobody@emulator.local"}, "invalid_grant", "authentication failure"),
        ({"client_secret": "wrong"}, "invalid_client", "invalid client credentials"),
        ({"client_id": "someone-else"}, "invalid_client_id", "client identifier invalid"),
        (
            {"grant_type": "authorization_code"},
            "unsupported_grant_type",
            "grant type not supported",
        ),
    ],
)
async def test_password_refusals(
    emulator: RunningEmulator,
    http: aiohttp.ClientSession,
    overrides: dict[str, str],
    error: str,
    description: str,
) -> None:
    answer = await token_request(http, emulator.url, DEFAULT_LOGIN | overrides)
    assert answer.status == 400
    assert answer.body == {"error": error, "error_description": description}


async def test_security_token_is_appended_to_the_password(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    user = {"username": "token@emulator.local"}
    alone = await token_request(http, emulator.url, DEFAULT_LOGIN | user | {"password": "secret"})
    assert alone.body == {"error": "invalid_grant", "error_description": "authentication failure"}
    joined = DEFAULT_LOGIN | user | {"password": "secretTOK123"}
    assert (await token_request(http, emulator.url, joined)).status == 200


async def test_json_body_is_an_unsupported_grant(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{emulator.url}/services/oauth2/token", json=DEFAULT_LOGIN) as response:
        assert response.status == 400
        assert await response.json() == {
            "error": "unsupported_grant_type",
            "error_description": "grant type not supported",
        }


async def test_blocked_grants(emulator: RunningEmulator, http: aiohttp.ClientSession) -> None:
    blocked = await control(http, emulator.url, "grants", {"blocked": ["password", "jwt"]})
    assert blocked.body == {"blocked": ["jwt", "password"]}
    password = await token_request(http, emulator.url, DEFAULT_LOGIN)
    assert password.body == {
        "error": "invalid_grant",
        "error_description": "authentication failure",
    }
    bearer = await token_request(
        http, emulator.url, {"grant_type": JWT_GRANT, "assertion": _assertion()}
    )
    assert bearer.body["error"] == "unsupported_grant_type"
    await control(http, emulator.url, "grants", {"blocked": []})
    assert (await token_request(http, emulator.url, DEFAULT_LOGIN)).status == 200


async def test_jwt_bearer_with_the_connected_app_key(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    answer = await token_request(
        http, emulator.url, {"grant_type": JWT_GRANT, "assertion": _assertion()}
    )
    assert answer.status == 200
    assert answer.body["scope"] == "id api"
    assert answer.body["token_type"] == "Bearer"
    client = OrgClient(http, answer.body["instance_url"], answer.body["access_token"])
    assert (await client.call("GET", "limits")).status == 200


async def test_jwt_bearer_accepts_the_emulator_audience_and_a_user_key(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    own = _assertion(aud=emulator.url)
    assert (
        await token_request(http, emulator.url, {"grant_type": JWT_GRANT, "assertion": own})
    ).status == 200
    user_signed = _assertion(
        USER_PRIVATE, sub="jwt@emulator.local", aud="https://test.salesforce.com"
    )
    answer = await token_request(
        http, emulator.url, {"grant_type": JWT_GRANT, "assertion": user_signed}
    )
    assert answer.status == 200


async def test_users_added_at_run_time_can_log_in(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    added = await control(
        http,
        emulator.url,
        "users",
        {"username": "late@emulator.local", "password": "pw", "jwt_public_key": USER_PUBLIC},
    )
    assert added.body == {"username": "late@emulator.local", "user_id": "005EM0000000004YAA"}
    bearer = _assertion(USER_PRIVATE, sub="late@emulator.local")
    form = {"grant_type": JWT_GRANT, "assertion": bearer}
    assert (await token_request(http, emulator.url, form)).status == 200
    password = DEFAULT_LOGIN | {"username": "late@emulator.local", "password": "pw"}
    assert (await token_request(http, emulator.url, password)).status == 200
    refused = await control(http, emulator.url, "users", {"username": "x@y.z"})
    assert refused.status == 400
    assert refused.body == {"error": "password: Field required"}


async def test_jwt_bearer_tolerates_three_minutes_of_skew(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    slightly_late = _assertion(exp=int(time.time()) - 60)
    form = {"grant_type": JWT_GRANT, "assertion": slightly_late}
    assert (await token_request(http, emulator.url, form)).status == 200


@pytest.mark.parametrize(
    ("claims", "key", "error", "description"),
    [
        ({"aud": "https://evil.example.com"}, APP_PRIVATE, "invalid_grant", "audience is invalid"),
        (
            {"exp": int(time.time()) - 600},
            APP_PRIVATE,
            "invalid_grant",
            "expired authorization code",
        ),
        ({"iss": "other-app"}, APP_PRIVATE, "invalid_client_id", "client identifier invalid"),
        (
            {"sub": "ghost@emulator.local"},
            APP_PRIVATE,
            "invalid_grant",
            "user hasn't approved this consumer",
        ),
        ({}, OTHER_PRIVATE, "invalid_grant", "invalid assertion"),
    ],
)
async def test_jwt_bearer_refusals(
    emulator: RunningEmulator,
    http: aiohttp.ClientSession,
    claims: dict[str, Any],
    key: str,
    error: str,
    description: str,
) -> None:
    form = {"grant_type": JWT_GRANT, "assertion": _assertion(key, **claims)}
    answer = await token_request(http, emulator.url, form)
    assert answer.status == 400
    assert answer.body == {"error": error, "error_description": description}


async def test_jwt_bearer_rejects_garbage(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    form = {"grant_type": JWT_GRANT, "assertion": "not.a.jwt"}
    answer = await token_request(http, emulator.url, form)
    assert answer.body == {"error": "invalid_grant", "error_description": "invalid assertion"}


def _basic(client_id: str, secret: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


CLIENT_CREDENTIALS = {
    "grant_type": "client_credentials",
    "client_id": "emulator-client",
    "client_secret": "emulator-secret",
}


async def test_client_credentials_on_my_domain(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    in_form = await token_request(http, emulator.url, CLIENT_CREDENTIALS)
    assert in_form.status == 200
    assert in_form.body["scope"] == "id api"
    assert in_form.body["id"].endswith("/005EM0000000001YAA")  # the run-as user: the admin
    in_header = await token_request(
        http,
        emulator.url,
        {"grant_type": "client_credentials"},
        headers=_basic("emulator-client", "emulator-secret"),
    )
    assert in_header.status == 200


async def test_client_credentials_refused_on_the_login_host(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    login_url = f"http://localhost:{emulator.ctx.settings.port}"
    answer = await token_request(http, login_url, CLIENT_CREDENTIALS)
    assert answer.status == 400
    assert answer.body == {
        "error": "invalid_grant",
        "error_description": "request not supported on this domain",
    }


async def test_client_credentials_with_a_wrong_secret(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    answer = await token_request(
        http,
        emulator.url,
        {"grant_type": "client_credentials"},
        headers=_basic("emulator-client", "nope"),
    )
    assert answer.body == {
        "error": "invalid_client",
        "error_description": "invalid client credentials",
    }


async def test_refresh_token_grant_and_revocation(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    form = {
        "grant_type": "refresh_token",
        "client_id": "emulator-client",
        "client_secret": "emulator-secret",
        "refresh_token": "emulator-refresh-token",
    }
    answer = await token_request(http, emulator.url, form)
    assert answer.status == 200
    assert "refresh_token" not in answer.body
    unknown = await token_request(http, emulator.url, form | {"refresh_token": "forged"})
    assert unknown.body == {
        "error": "invalid_grant",
        "error_description": "expired access/refresh token",
    }
    revoked = await control(
        http, emulator.url, "sessions/expire", {"refresh_token": "emulator-refresh-token"}
    )
    assert revoked.body == {"expired": 0, "refresh_token_revoked": True}
    again = await token_request(http, emulator.url, form)
    assert again.body["error_description"] == "expired access/refresh token"


async def test_idle_session_expires_and_use_keeps_it_alive(
    emulator: RunningEmulator, org: OrgClient, http: aiohttp.ClientSession
) -> None:
    await control(http, emulator.url, "clock", {"advance_s": 45})
    assert (await org.call("GET", "limits")).status == 200  # touches the session
    await control(http, emulator.url, "clock", {"advance_s": 45})
    assert (await org.call("GET", "limits")).status == 200
    await control(http, emulator.url, "clock", {"advance_s": 61})
    expired = await org.call("GET", "limits")
    assert expired.status == 401
    assert expired.body == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


async def test_injected_token_failure_then_success(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    await control(http, emulator.url, "fail", {"surface": "token", "count": 1, "status": 503})
    failed = await token_request(http, emulator.url, DEFAULT_LOGIN)
    assert failed.status == 503
    assert failed.body == {"error": "unknown_error", "error_description": "retry your request"}
    assert (await token_request(http, emulator.url, DEFAULT_LOGIN)).status == 200
    stats = await control(http, emulator.url, "stats")
    assert stats.body["logins"] == 1


def test_users_file_problems_name_their_entry(tmp_path: Path) -> None:
    users_file = tmp_path / "users.yaml"
    users_file.write_text("- username: a@b.c\n  password: x\n- username: b@b.c\n  colour: red\n")
    with pytest.raises(ConfigError) as caught:
        load_users_file(users_file)
    assert caught.value.problems == [
        "[1].password: Field required",
        "[1].colour: Extra inputs are not permitted",
    ]
