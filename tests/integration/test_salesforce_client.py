"""The Salesforce seam against the bundled emulator, over real HTTP."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sftriggerd.config.settings import SalesforceSettings
from sftriggerd.errors import AuthenticationError, SalesforceError
from sftriggerd.logs import configure_logging
from sftriggerd.metrics import Metrics
from sftriggerd.salesforce.client import RetryPolicy, SalesforceApiError, SalesforceClient
from sftriggerd_emulator.context import EmulatorSettings
from tests.integration.forward_proxy import ForwardProxy
from tests.keys import rsa_key_pair
from tests.support.emulator import RunningEmulator, start_emulator

FAST_RETRY = RetryPolicy(attempts=4, base_s=0.01, cap_s=0.05, timeout_s=10)


class SteadyRetry(RetryPolicy):
    """Waits `base_s` before every retry. Full jitter can draw waits near zero and spend
    every attempt before a test frees what it waits for."""

    def delay_s(self, attempt: int) -> float:
        return self.base_s


def sf_settings(emulator: RunningEmulator, **auth: Any) -> SalesforceSettings:
    fields: dict[str, Any] = {
        "flow": "password",
        "client_id": "emulator-client",
        "client_secret": "emulator-secret",
        "username": "admin@emulator.local",
        "password": "emulator",
    }
    fields.update(auth)
    login_url = fields.pop("login_url", emulator.url)
    proxy = fields.pop("proxy", None)
    return SalesforceSettings.model_validate(
        {"login_url": login_url, "auth": fields, "proxy": proxy, "api_budget": 0.5}
    )


def make_client(
    emulator: RunningEmulator, http: aiohttp.ClientSession, **auth: Any
) -> SalesforceClient:
    return SalesforceClient(sf_settings(emulator, **auth), http, Metrics(), retry=FAST_RETRY)


async def control(
    http: aiohttp.ClientSession,
    emulator: RunningEmulator,
    path: str,
    body: dict[str, Any] | None = None,
) -> Any:
    async with http.post(f"{emulator.url}/_emulator/{path}", json=body or {}) as response:
        assert response.status < 300, await response.text()
        return await response.json()


async def stats(http: aiohttp.ClientSession, emulator: RunningEmulator) -> dict[str, Any]:
    async with http.get(f"{emulator.url}/_emulator/stats") as response:
        result: dict[str, Any] = await response.json()
        return result


def api_calls(client: SalesforceClient, kind: str) -> float | None:
    return client.metrics.registry.get_sample_value(
        "sftriggerd_salesforce_api_calls_total", {"kind": kind}
    )


async def create_accounts(client: SalesforceClient, count: int, prefix: str = "Acme") -> list[str]:
    ids = []
    for i in range(count):
        body = await client.request_json(
            "POST", "sobjects/Account", kind="sobject", json_body={"Name": f"{prefix} {i:04d}"}
        )
        ids.append(body["id"])
    return ids


async def test_password_flow_logs_in_lazily_and_queries(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    client = make_client(emulator, http)
    assert client.session.logins == 0
    ids = await create_accounts(client, 3)
    names = [r["Name"] async for r in client.query("SELECT Id, Name FROM Account ORDER BY Name")]
    assert names == ["Acme 0000", "Acme 0001", "Acme 0002"]
    assert client.session.logins == 1
    token = await client.session.token()
    assert token.instance_url.startswith("http://127.0.0.1:")
    record = await client.get_record("Account", ids[0], ["Name"])
    assert record is not None and record["Name"] == "Acme 0000"


async def test_wrong_password_names_the_cause_without_the_secret(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    client = make_client(emulator, http, password="not-the-password")
    with pytest.raises(AuthenticationError) as caught:
        await client.count("SELECT COUNT() FROM Account")
    message = str(caught.value)
    assert "invalid_grant: authentication failure" in message
    assert "not-the-password" not in message and "emulator-secret" not in message


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ({"client_secret": "wrong-secret"}, "invalid_client: invalid client credentials"),
        ({"client_id": "unknown-app"}, "invalid_client_id: client identifier invalid"),
    ],
)
async def test_wrong_client_credentials(
    emulator: RunningEmulator, http: aiohttp.ClientSession, auth: dict[str, str], expected: str
) -> None:
    with pytest.raises(AuthenticationError, match=expected):
        await make_client(emulator, http, **auth).session.token()


async def test_refresh_token_flow(emulator: RunningEmulator, http: aiohttp.ClientSession) -> None:
    client = make_client(
        emulator, http, flow="refresh_token", refresh_token="emulator-refresh-token"
    )
    assert await client.count("SELECT COUNT() FROM Account") == 0
    revoked = make_client(emulator, http, flow="refresh_token", refresh_token="revoked-one")
    with pytest.raises(AuthenticationError, match="invalid_grant"):
        await revoked.session.token()


async def test_client_credentials_only_on_the_my_domain_host(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    # The emulator's instance host (127.0.0.1) plays My Domain; localhost plays login.
    my_domain = make_client(emulator, http, flow="client_credentials")
    assert await my_domain.count("SELECT COUNT() FROM Account") == 0
    login_host = emulator.url.replace("127.0.0.1", "localhost")
    generic = make_client(emulator, http, flow="client_credentials", login_url=login_host)
    with pytest.raises(AuthenticationError, match="request not supported on this domain"):
        await generic.session.token()


async def test_jwt_bearer_flow_with_a_throwaway_key(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    private_pem, public_pem = rsa_key_pair()
    users = tmp_path / "users.json"
    users.write_text(
        json.dumps(
            [{"username": "jwt@emulator.local", "password": "unused", "jwt_public_key": public_pem}]
        )
    )
    settings = EmulatorSettings(state_dir=tmp_path / "org", users_file=users)
    emulator, runner = await start_emulator(settings)
    try:
        jwt_auth = {
            "flow": "jwt",
            "username": "jwt@emulator.local",
            "client_secret": None,
            "password": None,
        }
        client = make_client(emulator, http, private_key=private_pem, **jwt_auth)
        assert await client.count("SELECT COUNT() FROM Account") == 0
        other_private, _ = rsa_key_pair()
        forged = make_client(emulator, http, private_key=other_private, **jwt_auth)
        with pytest.raises(AuthenticationError, match="invalid_grant"):
            await forged.session.token()
        unknown = make_client(
            emulator,
            http,
            private_key=private_pem,
            **{**jwt_auth, "username": "nobody@emulator.local"},
        )
        with pytest.raises(AuthenticationError, match="invalid_grant"):
            await unknown.session.token()
    finally:
        await runner.cleanup()


async def test_fifty_callers_after_expiry_cause_one_relogin(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    client = make_client(emulator, http)
    await create_accounts(client, 2)
    before = await stats(http, emulator)
    await control(http, emulator, "sessions/expire")
    counts = await asyncio.gather(*(client.count("SELECT COUNT() FROM Account") for _ in range(50)))
    assert counts == [2] * 50
    after = await stats(http, emulator)
    assert client.session.logins == 2
    assert after["logins"] - before["logins"] == 1


async def test_pagination_across_many_pages(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    client = make_client(emulator, http)
    await create_accounts(client, 95)
    pages = [
        page
        async for page in client.query_pages(
            "SELECT Id, Name FROM Account ORDER BY Name", batch_size=10
        )
    ]
    assert len(pages) == 10
    names = [r["Name"] for page in pages for r in page.records]
    assert names == [f"Acme {i:04d}" for i in range(95)]
    assert all(page.total_size == 95 for page in pages)


async def test_injected_500s_are_retried(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    client = make_client(emulator, http)
    await client.session.token()
    await control(http, emulator, "fail", {"surface": "rest", "count": 2, "status": 500})
    assert await client.count("SELECT COUNT() FROM Account") == 0
    assert api_calls(client, "query") == 3


async def test_persistent_500s_give_up_with_a_clear_error(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    client = make_client(emulator, http)
    await client.session.token()
    await control(http, emulator, "fail", {"surface": "rest", "count": 10, "status": 503})
    with pytest.raises(SalesforceError, match="failed 4 times"):
        await client.count("SELECT COUNT() FROM Account")


async def test_request_limit_exceeded_is_retried_until_the_limit_frees(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    client = SalesforceClient(
        sf_settings(emulator),
        http,
        Metrics(),
        retry=SteadyRetry(attempts=8, base_s=0.05, cap_s=0.1, timeout_s=10),
    )
    await client.session.token()
    await control(http, emulator, "limits", {"max": 1000, "used": 1000})

    async def free_the_limit() -> None:
        await asyncio.sleep(0.15)
        await control(http, emulator, "limits", {"max": 1000, "used": 10})

    freeing = asyncio.create_task(free_the_limit())
    assert await client.count("SELECT COUNT() FROM Account") == 0
    await freeing
    assert client.budget.usage is not None and client.budget.usage.limit == 1000


async def test_request_limit_exceeded_surfaces_when_it_stays(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    client = make_client(emulator, http)
    await client.session.token()
    await control(http, emulator, "limits", {"max": 1000, "used": 1000})
    with pytest.raises(SalesforceError, match="REQUEST_LIMIT_EXCEEDED"):
        await client.count("SELECT COUNT() FROM Account")


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id FRM Account", "MALFORMED_QUERY"),
        ("SELECT Id, Nope__c FROM Account", "INVALID_FIELD"),
    ],
)
async def test_query_errors_are_not_retried(
    emulator: RunningEmulator, http: aiohttp.ClientSession, soql: str, code: str
) -> None:
    client = make_client(emulator, http)
    await create_accounts(client, 1)
    with pytest.raises(SalesforceApiError) as caught:
        await client.count(soql)
    assert caught.value.error_code == code
    assert caught.value.status == 400
    assert api_calls(client, "query") == 1
    if code == "INVALID_FIELD":
        assert "No such column 'Nope__c' on entity 'Account'" in str(caught.value)


async def test_usage_header_feeds_budget_and_metric(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    client = make_client(emulator, http)
    await control(http, emulator, "limits", {"max": 1000, "used": 400})
    await client.count("SELECT COUNT() FROM Account")
    usage = client.budget.usage
    assert usage is not None and usage.limit == 1000 and 400 < usage.used < 410
    ratio = client.metrics.registry.get_sample_value("sftriggerd_salesforce_api_usage_ratio")
    assert ratio == pytest.approx(usage.ratio)
    assert client.budget.may_spend(50)
    assert not client.budget.may_spend(150)


async def test_describe_updated_deleted_and_limits(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    client = make_client(emulator, http)
    ids = await create_accounts(client, 2)
    await client.request_json("DELETE", f"sobjects/Account/{ids[1]}", kind="sobject")
    describe = await client.describe("Account")
    assert "Name" in {field["name"] for field in describe["fields"]}
    now = emulator.ctx.clock.now()
    from datetime import timedelta

    updated = await client.get_updated(
        "Account", now - timedelta(hours=1), now + timedelta(minutes=2)
    )
    assert ids[0] in updated["ids"]
    deleted = await client.get_deleted(
        "Account", now - timedelta(hours=1), now + timedelta(minutes=2)
    )
    assert [d["id"] for d in deleted["deletedRecords"]] == [ids[1]]
    assert await client.get_record("Account", ids[1]) is None
    limits = await client.limits()
    assert limits["DailyApiRequests"]["Max"] > 0


async def test_requests_go_through_the_configured_proxy(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    proxy = ForwardProxy()
    await proxy.start()
    try:
        client = make_client(emulator, http, proxy=proxy.url)
        assert await client.count("SELECT COUNT() FROM Account") == 0
    finally:
        await proxy.stop()
    assert any("/services/oauth2/token" in line for line in proxy.seen)
    assert any("/query" in line for line in proxy.seen)


async def test_no_secret_is_ever_logged(
    emulator: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    stream = io.StringIO()
    configure_logging("debug", "json", stream)
    client = make_client(emulator, http)
    await client.count("SELECT COUNT() FROM Account")
    token = (await client.session.token()).access_token
    await control(http, emulator, "sessions/expire")
    await control(http, emulator, "fail", {"surface": "rest", "count": 1, "status": 500})
    await client.count("SELECT COUNT() FROM Account")
    with pytest.raises(AuthenticationError):
        await make_client(emulator, http, password="wrong-pass-123").session.token()
    output = stream.getvalue()
    assert "salesforce_login" in output and "salesforce_retry" in output
    assert "salesforce_login_rejected" in output
    for secret in ("emulator-secret", token, "wrong-pass-123", "password=emulator"):
        assert secret not in output
