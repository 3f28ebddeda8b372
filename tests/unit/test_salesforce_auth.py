import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sftriggerd.config.settings import AuthSettings
from sftriggerd.errors import AuthenticationError
from sftriggerd.salesforce.auth import Token, jwt_audience, token_form


@pytest.mark.parametrize(
    ("login_url", "audience"),
    [
        ("https://login.salesforce.com", "https://login.salesforce.com"),
        ("https://test.salesforce.com/", "https://test.salesforce.com"),
        ("https://acme.my.salesforce.com", "https://login.salesforce.com"),
        ("https://acme--uat.sandbox.my.salesforce.com", "https://test.salesforce.com"),
        ("http://127.0.0.1:8443", "http://127.0.0.1:8443"),
    ],
)
def test_jwt_audience_per_host(login_url: str, audience: str) -> None:
    assert jwt_audience(login_url) == audience


def test_password_flow_appends_the_security_token() -> None:
    auth = AuthSettings(
        flow="password",
        client_id="cid",
        client_secret="cs",  # type: ignore[arg-type]
        username="u@x",
        password="pw",
        security_token="TOK",
    )  # type: ignore[arg-type]
    form = token_form(auth, "https://login.salesforce.com")
    assert form == {
        "grant_type": "password",
        "client_id": "cid",
        "client_secret": "cs",
        "username": "u@x",
        "password": "pwTOK",
    }


def test_client_credentials_and_refresh_forms() -> None:
    cc = AuthSettings(flow="client_credentials", client_id="cid", client_secret="cs")  # type: ignore[arg-type]
    assert token_form(cc, "https://acme.my.salesforce.com")["grant_type"] == "client_credentials"
    refresh = AuthSettings(flow="refresh_token", client_id="cid", refresh_token="rt")  # type: ignore[arg-type]
    assert token_form(refresh, "https://login.salesforce.com") == {
        "grant_type": "refresh_token",
        "client_id": "cid",
        "refresh_token": "rt",
    }


def test_jwt_assertion_claims() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    auth = AuthSettings(flow="jwt", client_id="cid", username="u@x", private_key=pem)  # type: ignore[arg-type]
    form = token_form(auth, "https://acme--uat.sandbox.my.salesforce.com")
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(
        form["assertion"],
        key.public_key(),
        algorithms=["RS256"],
        audience="https://test.salesforce.com",
    )
    assert (claims["iss"], claims["sub"]) == ("cid", "u@x")


def test_a_bad_private_key_is_a_clear_error_without_the_key() -> None:
    auth = AuthSettings(flow="jwt", client_id="cid", username="u", private_key="not-a-pem-key")  # type: ignore[arg-type]
    with pytest.raises(AuthenticationError) as caught:
        token_form(auth, "https://login.salesforce.com")
    assert "private_key cannot sign" in str(caught.value)
    assert "not-a-pem-key" not in str(caught.value)


def test_token_repr_hides_the_access_token() -> None:
    token = Token(access_token="00Dxx!secret", instance_url="https://x", issued_at_ms=1)
    assert "secret" not in repr(token)
