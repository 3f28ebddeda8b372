"""No secret reaches a log line, whatever the shape it arrives in."""

import io
import json
import logging

import pytest

from sftriggerd.logs import REDACTED, SecretRedactor, configure_logging, get_logger


@pytest.fixture
def captured() -> io.StringIO:
    stream = io.StringIO()
    configure_logging("debug", "json", stream)
    return stream


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_event_level_time_and_bound_context(captured: io.StringIO) -> None:
    get_logger("t").bind(trigger="account-changes").info("poll_finished", records=3)
    [line] = lines(captured)
    assert line["event"] == "poll_finished"
    assert line["level"] == "info"
    assert line["trigger"] == "account-changes"
    assert line["records"] == 3
    assert str(line["timestamp"]).endswith("Z")


def test_sensitive_keys_are_redacted_at_any_depth(captured: io.StringIO) -> None:
    get_logger("t").info(
        "login_attempt",
        password="hunter2",
        client_secret="s3cr3t",
        request={"headers": {"Authorization": "Bearer abc", "Accept": "json"}},
        refresh_token="rt",
        user="u@example.com",
    )
    [line] = lines(captured)
    assert line["password"] == REDACTED
    assert line["client_secret"] == REDACTED
    assert line["refresh_token"] == REDACTED
    assert line["request"] == {"headers": {"Authorization": REDACTED, "Accept": "json"}}
    assert line["user"] == "u@example.com"


def test_secret_shapes_inside_free_text_are_redacted(captured: io.StringIO) -> None:
    get_logger("t").warning(
        "call_failed",
        detail="sent grant_type=password&password=pw123&username=u with Bearer tok.en",
        note="secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw and 00D5g000004ABCD!AQ0AQH0dMHZfz",
    )
    text = captured.getvalue()
    for leaked in ("pw123", "tok.en", "MfKQ9r8", "AQ0AQH0dMHZfz"):
        assert leaked not in text
    assert "password=[redacted]" in text
    assert "username=u" in text


def test_a_bare_access_token_is_redacted_whole() -> None:
    from sftriggerd.logs import redactor

    # The opaque part may hold URL-safe characters; each is part of the token.
    token = "00D000000000001!xK3-_a.b~c+d/e=f-tail"
    assert redactor.scrub(f"refused {token} here") == f"refused {REDACTED} here"


@pytest.mark.parametrize(
    "prose",
    [
        "set the connected app's OAuth Policies",
        "Setup, OAuth and OpenID Connect Settings, 'Allow OAuth Username-Password Flows'",
        "with a bearer token, or Basic auth",
    ],
)
def test_a_scheme_followed_by_words_of_prose_is_kept(prose: str) -> None:
    from sftriggerd.logs import SecretRedactor

    assert SecretRedactor().scrub(prose) == prose


@pytest.mark.parametrize(
    "credential",
    ["abcdefghijklmnopqrstu", "ABCDEFGHIJKLMNOP", "Abcdefghijklmnopqr", "short-abcdefghijklmnopq"],
)
def test_a_credential_of_plain_letters_is_still_redacted(credential: str) -> None:
    from sftriggerd.logs import SecretRedactor

    assert SecretRedactor().scrub(f"Authorization: Bearer {credential}") == (
        f"Authorization: Bearer {REDACTED}"
    )


def test_a_public_value_that_contains_a_secret_is_kept_whole() -> None:
    from sftriggerd.logs import SecretRedactor

    redactor = SecretRedactor()
    redactor.remember(["emulator"])
    redactor.remember_public(["admin@emulator.local"])
    assert (
        redactor.scrub("admin@emulator.local refused: emulator is wrong")
        == f"admin@emulator.local refused: {REDACTED} is wrong"
    )


def test_known_config_secrets_are_redacted_in_foreign_loggers(captured: io.StringIO) -> None:
    from sftriggerd.logs import redactor

    redactor.remember(["correct-horse-battery"])
    logging.getLogger("aiohttp.client").error("upstream said correct-horse-battery was wrong")
    assert "correct-horse-battery" not in captured.getvalue()
    assert REDACTED in captured.getvalue()


def test_exceptions_are_scrubbed(captured: io.StringIO) -> None:
    get_logger("t").error("failed", error=RuntimeError("token=abc; Bearer xyz123"))
    assert "xyz123" not in captured.getvalue()


def test_private_key_blocks_are_removed() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEv...\n-----END PRIVATE KEY-----"
    assert SecretRedactor().scrub(f"key is {pem}!") == f"key is {REDACTED}!"


def test_console_format_renders_the_event(captured: io.StringIO) -> None:
    stream = io.StringIO()
    configure_logging("info", "console", stream)
    get_logger("t").info("daemon_started", password="x")
    output = stream.getvalue()
    assert "daemon_started" in output
    assert "password=[redacted]" in output


def test_url_user_info_is_stripped_from_every_line(captured: io.StringIO) -> None:
    """An aiohttp proxy error carries the proxy URL with its password (issue 13, item 10)."""
    error = OSError("Cannot connect to host via http://sync:pr0xy-Pass@proxy.corp:3128 [refused]")
    get_logger("t").warning("login_failed", error=str(error))
    logging.getLogger("aiohttp.client").error("proxy %s", "https://u:p4ss@proxy:8443/x")
    text = captured.getvalue()
    assert "pr0xy-Pass" not in text and "p4ss" not in text and "sync:" not in text
    first, second = lines(captured)
    assert first["error"] == "Cannot connect to host via http://proxy.corp:3128 [refused]"
    assert second["event"] == "proxy https://proxy:8443/x"


def test_url_passwords_from_the_config_are_redacted_wherever_they_appear(
    captured: io.StringIO,
) -> None:
    from sftriggerd.config import parse_settings
    from sftriggerd.logs import redactor

    settings = parse_settings(
        "salesforce:\n"
        "  auth: {client_id: c, client_secret: cs, username: u, password: p}\n"
        "  proxy: http://sync:pr%2Fxy-pass@proxy:3128\n",
        environ={},
    )
    redactor.remember(settings.secrets())
    get_logger("t").error("odd", detail="the password pr/xy-pass was refused (pr%2Fxy-pass)")
    [line] = lines(captured)
    assert line["detail"] == f"the password {REDACTED} was refused ({REDACTED})"
