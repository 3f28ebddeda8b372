"""The doctor names the usual mistake behind each refusal Salesforce's token endpoint answers."""

from __future__ import annotations

import pytest

from sftriggerd.doctor.login import named_mistake

PRODUCTION = "https://login.salesforce.com"


@pytest.mark.parametrize(
    ("flow", "error", "description", "named", "fix_mentions"),
    [
        (
            "jwt",
            "invalid_grant",
            "user hasn't approved this consumer",
            "the connected app is not pre-authorised for this user",
            "Admin approved users are pre-authorized",
        ),
        (
            "jwt",
            "invalid_grant",
            "audience is invalid",
            "wrong JWT audience (https://login.salesforce.com, from salesforce.login_url)",
            "https://test.salesforce.com (sandbox)",
        ),
        (
            "password",
            "invalid_grant",
            "authentication failure",
            "wrong username, password or security token, or the password flow is blocked",
            "Allow OAuth Username-Password Flows",
        ),
        (
            "client_credentials",
            "invalid_grant",
            "request not supported on this domain",
            "client_credentials is refused on the login host",
            "My Domain URL",
        ),
        (
            "password",
            "invalid_client_id",
            "client identifier invalid",
            "unknown client_id",
            "consumer key",
        ),
        (
            "password",
            "invalid_client",
            "invalid client credentials",
            "wrong client_secret",
            "consumer secret",
        ),
        (
            "refresh_token",
            "unsupported_grant_type",
            "grant type not supported",
            "the refresh_token flow is not enabled for this connected app",
            "OAuth settings",
        ),
    ],
)
def test_each_refusal_is_named_with_its_fix(
    flow: str, error: str, description: str, named: str, fix_mentions: str
) -> None:
    found = named_mistake(flow, error, description, PRODUCTION)
    assert found is not None
    what, fix = found
    assert what == named
    assert fix_mentions in fix


def test_a_sandbox_audience_is_shown_as_sent() -> None:
    found = named_mistake(
        "jwt", "invalid_grant", "audience is invalid", "https://test.salesforce.com"
    )
    assert found is not None and "(https://test.salesforce.com, from" in found[0]


def test_an_unknown_refusal_is_not_guessed() -> None:
    assert named_mistake("password", "invalid_request", "something new", PRODUCTION) is None
