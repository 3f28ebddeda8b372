"""The config loader against hostile files and environments: each refusal is a ConfigError
that says what is wrong, and comes quickly."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from sftriggerd.config import load_settings, parse_settings
from sftriggerd.config.files import MAX_FILE_BYTES
from sftriggerd.errors import ConfigError

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MINIMAL = """
salesforce:
  auth: {client_id: cid, client_secret: cs, username: u, password: p}
"""
WITH_ENDPOINT = (
    MINIMAL
    + f"""
triggers: [{{name: t, object: Account}}]
endpoints:
  - name: e
    url: "http://127.0.0.1:9/hook/"
    secret: {SECRET}
"""
)


def problems_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, "c.yaml", env or {})
    assert time.monotonic() - started < 2.0
    return caught.value.problems


def test_a_set_variable_wins_over_the_default() -> None:
    text = MINIMAL + "server: {listen: '${HOST:-127.0.0.1}:${PORT:-8080}'}\n"
    settings = parse_settings(text, environ={"HOST": "10.1.2.3", "PORT": "9090"})
    assert settings.server.listen == "10.1.2.3:9090"
    assert parse_settings(text, environ={}).server.listen == "127.0.0.1:8080"


def test_a_webhook_url_is_kept_exactly_as_configured() -> None:
    settings = parse_settings(WITH_ENDPOINT, environ={})
    assert settings.endpoints[0].url == "http://127.0.0.1:9/hook/"


@pytest.mark.parametrize("host", ["hooks..example.com", f"{'a' * 64}.example.com", ".example.com"])
def test_a_url_whose_host_cannot_be_looked_up_is_refused_naming_the_key(host: str) -> None:
    # The HTTP client raises on such a host at every request; the file says so at load.
    text = WITH_ENDPOINT.replace("127.0.0.1:9", f"user:pw123@{host}")
    [problem] = problems_of(text)
    assert "endpoints[0].url" in problem
    assert f"the host '{host}' cannot be looked up" in problem
    assert "pw123" not in problem
    login = MINIMAL.replace("auth:", f"login_url: https://{host}\n  auth:")
    [problem] = problems_of(login)
    assert "login_url" in problem and "cannot be looked up" in problem


def test_an_international_host_name_is_taken() -> None:
    settings = parse_settings(WITH_ENDPOINT.replace("127.0.0.1:9", "bücher.example"), environ={})
    assert settings.endpoints[0].url == "http://bücher.example/hook/"


def test_breaker_settings_default_to_todays_values_and_are_validated() -> None:
    breaker = parse_settings(WITH_ENDPOINT, environ={}).endpoints[0].breaker
    assert (breaker.failure_threshold, breaker.cooldown, breaker.max_cooldown) == (
        5,
        timedelta(seconds=30),
        timedelta(minutes=5),
    )
    text = WITH_ENDPOINT + "    breaker: {failure_threshold: 0}\n"
    [problem] = problems_of(text)
    assert "endpoints[0].breaker.failure_threshold: input should be greater than" in problem
    text = WITH_ENDPOINT + "    breaker: {cooldown: 0s}\n"
    assert any("cooldown must be longer than 0s" in p for p in problems_of(text))
    text = WITH_ENDPOINT + "    breaker: {cooldown: 10m, max_cooldown: 1m}\n"
    assert any("max_cooldown must be at least cooldown" in p for p in problems_of(text))


BILLION_LAUGHS = """
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""
MERGE_BOMB = "a: &a {x: 1, y: 2}\n" + "".join(
    f"{chr(98 + n)}: &{chr(98 + n)} {{<<: [{', '.join(['*' + chr(97 + n)] * 9)}], k{n}: 1}}\n"
    for n in range(12)
)


@pytest.mark.parametrize("text", [BILLION_LAUGHS, MERGE_BOMB], ids=["aliases", "merge_keys"])
def test_an_alias_bomb_is_refused_quickly(text: str) -> None:
    [problem] = problems_of(text)
    assert "expands to more than" in problem


@pytest.mark.parametrize(
    "text", ["a: &a [*a]\n", "a: &a {b: *a}\n", "a: &a {<<: *a}\n", "[" * 5000 + "]" * 5000]
)
def test_loops_and_deep_nesting_are_refused(text: str) -> None:
    [problem] = problems_of(text)
    assert "deeper than" in problem or "not valid YAML" in problem


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("2001-13-45", "is not a valid timestamp"),
        ("!!int", "is not a valid int"),
        ("!!int ''", "is not a valid int"),
        ("!!timestamp", "is not a valid timestamp"),
        ("!!python/object:os.system x", "is not a valid"),
        ('"\\ud800"', "lone surrogate"),
        ("{<<: 5}", "merge key"),
    ],
)
def test_values_no_constructor_can_build_are_problems(value: str, says: str) -> None:
    text = MINIMAL + f"store:\n  retention: {value}\n"
    assert any(says in p for p in problems_of(text))


def test_a_lone_surrogate_from_the_environment_is_refused() -> None:
    # os.environ decodes bytes that are not UTF-8 into lone surrogates.
    text = MINIMAL.replace("password: p", "password: '${SF_PASSWORD}'")
    [problem] = problems_of(text, {"SF_PASSWORD": "abc\udcff"})
    assert "salesforce.auth.password" in problem and "lone surrogate" in problem
    problem.encode("utf-8")


def test_a_lone_surrogate_in_a_key_is_refused() -> None:
    assert any("lone surrogate" in p for p in problems_of(MINIMAL + '"\\udc80x": 1\n'))


@pytest.mark.parametrize("duration", ["99999999999d", "9" * 400 + "s", "36501d"])
def test_durations_past_a_hundred_years_are_refused(duration: str) -> None:
    [problem] = problems_of(MINIMAL + f"store: {{retention: '{duration}'}}\n")
    assert "longer than 100 years" in problem


def file_reference(path: str) -> str:
    return MINIMAL.replace("password: p", f"password: '${{file:{path}}}'")


@pytest.mark.parametrize(
    ("path", "says"),
    [("/dev/zero", "not a regular file"), ("/", "not a regular file"), ("", "names no file")],
)
def test_a_file_reference_needs_a_regular_file(path: str, says: str) -> None:
    [problem] = problems_of(file_reference(path))
    assert says in problem


def test_a_file_reference_to_a_fifo_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "secret"
    os.mkfifo(fifo)
    [problem] = problems_of(file_reference(str(fifo)))
    assert "not a regular file" in problem


def test_a_file_reference_is_at_most_one_mib(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * (MAX_FILE_BYTES + 1))
    [problem] = problems_of(file_reference(str(big)))
    assert "larger than 1024 KiB" in problem
    exact = tmp_path / "exact"
    exact.write_bytes(b"x" * MAX_FILE_BYTES)
    settings = parse_settings(file_reference(str(exact)), environ={})
    assert settings.salesforce.auth.password is not None


def test_a_file_reference_must_be_utf8(tmp_path: Path) -> None:
    binary = tmp_path / "key"
    binary.write_bytes(b"\xff\xfe")
    [problem] = problems_of(file_reference(str(binary)))
    assert "not UTF-8 text" in problem


def test_the_config_file_itself_is_read_safely(tmp_path: Path) -> None:
    binary = tmp_path / "c.yaml"
    binary.write_bytes(b"\x80salesforce: {}")
    with pytest.raises(ConfigError, match="configuration problem") as caught:
        load_settings(binary, {})
    assert "not UTF-8 text" in caught.value.problems[0]
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    done = threading.Event()
    with pytest.raises(ConfigError):
        try:
            load_settings(fifo, {})
        finally:
            done.set()
    assert done.is_set()


def test_url_passwords_are_secrets_for_the_redactor() -> None:
    text = (
        WITH_ENDPOINT.replace("http://127.0.0.1:9/hook/", "https://hook:p%40ss-word@h.example/x")
        + "store: {url: 'postgresql://sf:db-pass-1@db/sf'}\n"
    )
    text = text.replace("password: p}", "password: p}\n  proxy: http://u:proxy-pass-9@proxy:3128")
    secrets = parse_settings(text, environ={}).secrets()
    assert {"proxy-pass-9", "db-pass-1", "p%40ss-word", "p@ss-word"} <= set(secrets)


@pytest.mark.parametrize("listen", ["127.0.0.1:²", "127.0.0.1:" + "9" * 5000, "[::1]:-1"])
def test_a_listen_port_is_ascii_digits(listen: str) -> None:
    [problem] = problems_of(MINIMAL + f"server: {{listen: '{listen}'}}\n")
    assert "is not host:port" in problem


def test_trigger_and_endpoint_names_are_at_most_100_characters() -> None:
    """A name is a key of the store's indexes (PostgreSQL refuses an index entry over about
    2700 bytes) and an endpoint's name is a NOTIFY payload (at most 8000 bytes)."""
    longest, too_long = "a" * 100, "b" * 101
    fitting = WITH_ENDPOINT.replace("name: t,", f"name: {longest},").replace(
        "name: e\n", f"name: {longest}\n"
    )
    settings = parse_settings(fitting, "c.yaml", {})
    assert settings.triggers[0].name == settings.endpoints[0].name == longest
    over = WITH_ENDPOINT.replace("name: t,", f"name: {too_long},").replace(
        "name: e\n", f"name: {too_long}\n"
    )
    assert problems_of(over) == [
        "c.yaml:5: triggers[0].name: string should have at most 100 characters",
        "c.yaml:7: endpoints[0].name: string should have at most 100 characters",
    ]
