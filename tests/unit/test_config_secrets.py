"""An endpoint's `secret`: one `whsec_` string, or a list of them during a rollover. Every
fault is reported at the YAML path of the item that has it."""

from __future__ import annotations

import base64
import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftriggerd.config import parse_settings
from sftriggerd.errors import ConfigError
from sftriggerd.logs import SecretRedactor

OLD = "whsec_" + base64.b64encode(b"the old secret, 32 bytes long!!!").decode()
NEW = "whsec_" + base64.b64encode(b"the new secret, 32 bytes long!!!").decode()


def config(secret_yaml: str) -> str:
    return f"""salesforce:
  auth: {{client_id: c, client_secret: s, username: u, password: p}}
endpoints:
  - name: e
    url: http://127.0.0.1:9/hook
    secret: {secret_yaml}
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, "c.yaml", {})
    return caught.value.problems


def test_one_secret_or_a_list_gives_the_keys_in_order() -> None:
    (one,) = parse_settings(config(OLD), environ={}).endpoints
    (both,) = parse_settings(config(f"[{OLD}, {NEW}]"), environ={}).endpoints
    assert one.secret_keys == (base64.b64decode(OLD[6:]),)
    assert both.secret_keys == (base64.b64decode(OLD[6:]), base64.b64decode(NEW[6:]))
    assert both.secret_key == one.secret_key


def test_secrets_come_from_references_item_by_item() -> None:
    text = config('["${SECRET_OLD}", "${SECRET_NEW}"]')
    (endpoint,) = parse_settings(text, environ={"SECRET_OLD": OLD, "SECRET_NEW": NEW}).endpoints
    assert [secret.get_secret_value() for secret in endpoint.secret] == [OLD, NEW]


@pytest.mark.parametrize(
    ("secret_yaml", "expected"),
    [
        ("[]", "c.yaml:6: endpoints[0].secret: needs at least one secret"),
        (f"[{OLD}, plain]", "c.yaml:6: endpoints[0].secret[1]: must be a Standard Webhooks"),
        (f"[{OLD}, whsec_@@]", "endpoints[0].secret[1]: the part after whsec_ is not valid base64"),
        (f"[{OLD}, 42]", "endpoints[0].secret[1]: input should be a valid string"),
        (f"[{OLD}, {NEW}, {OLD}]", "endpoints[0].secret: [2] is the same secret as [0]"),
        ("whsec_AAAA", "endpoints[0].secret: the key after whsec_ must decode to at least 16"),
        ("plain", "c.yaml:6: endpoints[0].secret: must be a Standard Webhooks secret"),
        ("{a: b}", "endpoints[0].secret: must be a whsec_ secret or a list of them"),
        ("null", "endpoints[0].secret: must be a whsec_ secret or a list of them"),
    ],
)
def test_a_bad_secret_is_named_by_its_path(secret_yaml: str, expected: str) -> None:
    problems = problems_of(config(secret_yaml))
    assert any(expected in problem for problem in problems), problems
    # The one-string form is never reported at `[0]` of a scalar.
    if not secret_yaml.startswith("["):
        assert not any("secret[0]" in problem for problem in problems), problems


def test_a_bad_item_on_its_own_line_is_reported_at_that_line() -> None:
    text = config(f"\n      - {OLD}\n      - not-a-secret\n")
    assert problems_of(text) == [
        "c.yaml:8: endpoints[0].secret[1]: must be a Standard Webhooks secret: whsec_ followed "
        "by base64"
    ]


def test_every_listed_secret_is_given_to_the_redactor() -> None:
    settings_ = parse_settings(config(f"[{OLD}, {NEW}]"), environ={})
    found = settings_.secrets()
    for secret in (OLD, NEW):
        assert secret in found and secret.removeprefix("whsec_") in found


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([OLD, NEW, "whsec_" + "A" * 24, "whsec_" + "B" * 24]), max_size=5))
def test_a_list_parses_exactly_when_it_is_non_empty_and_distinct(secrets: list[str]) -> None:
    text = config("[" + ", ".join(secrets) + "]")
    if secrets and len(set(secrets)) == len(secrets):
        (endpoint,) = parse_settings(text, environ={}).endpoints
        assert [secret.get_secret_value() for secret in endpoint.secret] == secrets
    else:
        (problem,) = problems_of(text)
        assert problem.startswith("c.yaml:6: endpoints[0].secret: ")


def test_the_rollover_procedure_steps_are_valid_configuration() -> None:
    """docs/secret-rotation.md: each step's endpoints block, under a minimal salesforce
    section, is accepted, and the steps go one secret -> two -> the new one."""
    doc = (Path(__file__).parents[2] / "docs" / "secret-rotation.md").read_text()
    blocks = [textwrap.dedent(block) for block in re.findall(r"```yaml\n(.*?)```", doc, re.S)]
    env = {"CRM_SYNC_SECRET": OLD, "CRM_SYNC_SECRET_NEW": NEW}
    head = "salesforce:\n  auth: {client_id: c, client_secret: s, username: u, password: p}\n"
    keys = [parse_settings(head + block, environ=env).endpoints[0].secret for block in blocks]
    assert [[s.get_secret_value() for s in secrets] for secrets in keys] == [[OLD, NEW], [NEW]]
    # The quoted one-line form the text gives parses the same way.
    (one_line,) = re.findall(r'`(secret: \["\$\{CRM_SYNC_SECRET\}",\s+"[^`]+)`', doc)
    text = config(" ".join(one_line.split()).removeprefix("secret: "))
    (endpoint,) = parse_settings(text, environ=env).endpoints
    assert [secret.get_secret_value() for secret in endpoint.secret] == [OLD, NEW]


def test_the_log_redactor_removes_every_listed_secret_with_or_without_its_prefix() -> None:
    redactor = SecretRedactor()
    redactor.remember(parse_settings(config(f"[{OLD}, {NEW}]"), environ={}).secrets())
    line = f"receiver said: expected {OLD[6:]} or {NEW[6:]}, and {NEW} is configured"
    scrubbed = redactor.scrub(line)
    assert scrubbed.startswith("receiver said: expected ")
    for secret in (OLD, NEW):
        assert secret.removeprefix("whsec_") not in scrubbed
