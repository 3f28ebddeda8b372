"""The signature verification examples in docs/examples/verify/ verify what sftriggerd sends.

`vector.json` is made by sftriggerd's own body encoder and signer (`make_vector`); a test
keeps the file equal to what they produce now. Each example (Python, Node.js, Java, Perl)
runs as a receiver would run it, on the good vector and on tampered copies, and must exit 0
only for the good ones. The Python example is also held against the public Standard
Webhooks library. Regenerate the vector with `python -m tests.unit.test_verify_examples`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from sftriggerd.config.settings import decode_secret
from sftriggerd.delivery.signing import sign
from sftriggerd.events.normalise import from_cdc
from sftriggerd.events.payload import encode_body
from tests.salesforce_messages import CDC_CHANNEL, cdc

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples" / "verify"
VECTOR = EXAMPLES / "vector.json"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
TIMESTAMP = 1764324902  # a fixed attempt time, so the file does not change
RUN_TIMEOUT_S = 30

# language -> (the program that runs it, the example file)
EXAMPLE_RUNNERS: dict[str, tuple[str, str]] = {
    "python": (sys.executable, "verify.py"),
    "node": ("node", "verify.mjs"),
    "java": ("java", "Verify.java"),
    "perl": ("perl", "verify.pl"),
}


def make_vector(timestamp: int = TIMESTAMP, secret: str = SECRET) -> dict[str, Any]:
    """A webhook as sftriggerd sends it: a real body (non-ASCII text included), signed."""
    message = cdc("UPDATE", ["001D000000KnaXjIAJ"], Name="Zoë & Søn — 東京 🚀")
    [event] = from_cdc("account-changes", CDC_CHANNEL, message)
    body = encode_body(event)
    return {
        "description": "A webhook as sftriggerd signs it; `now` is the receiver's clock when it"
        " checks. Made by tests/unit/test_verify_examples.py.",
        "secret": secret,
        "id": event.id,
        "timestamp": timestamp,
        "body": body.decode("utf-8"),
        "signature": sign(event.id, timestamp, body, decode_secret(secret)),
        "now": timestamp + 30,
    }


def write_vector(path: Path, vector: dict[str, Any]) -> None:
    path.write_text(json.dumps(vector, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _other_signature(vector: dict[str, Any]) -> str:
    body = vector["body"].encode()
    return sign(vector["id"], vector["timestamp"], body, decode_secret(OTHER_SECRET))


# Each change of a good vector that a verifier must refuse (or, for the last ones, accept).
TAMPERED: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "body": lambda v: {**v, "body": v["body"].replace("Søn", "Son")},
    "id": lambda v: {**v, "id": v["id"][:-1] + ("0" if v["id"][-1] != "0" else "1")},
    "timestamp": lambda v: {**v, "timestamp": v["timestamp"] + 1},
    "secret": lambda v: {**v, "secret": OTHER_SECRET},
    "signature": lambda v: {**v, "signature": "v1," + "A" * 44},
    "stale": lambda v: {**v, "now": v["timestamp"] + 3600},
    "version": lambda v: {**v, "signature": v["signature"].replace("v1,", "v2,")},
}
ACCEPTED: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "as signed": lambda v: v,
    # During a secret rotation the header carries one signature per secret.
    "one of two signatures": lambda v: {
        **v,
        "signature": f"{_other_signature(v)} {v['signature']}",
    },
}


@pytest.fixture(scope="module")
def java_classes(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """Verify.java compiled once for the many tampered cases; `java Verify.java` compiles
    it on every run (two seconds here), which the shared vector's test still does."""
    if shutil.which("javac") is None:
        return None
    out = tmp_path_factory.mktemp("java")
    subprocess.run(
        ["javac", "-d", str(out), str(EXAMPLES / "Verify.java")],
        check=True,
        capture_output=True,
        timeout=RUN_TIMEOUT_S,
    )
    return out


def run_example(
    language: str, vector_path: Path, java_classes: Path | None = None
) -> subprocess.CompletedProcess[str]:
    program, example = EXAMPLE_RUNNERS[language]
    # `java Verify.java` compiles the source: it needs a JDK, not only a runtime.
    needed = [program, "javac"] if language == "java" else [program]
    for tool in needed:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed: the {language} example cannot run here")
    command = [program, str(EXAMPLES / example), str(vector_path)]
    if language == "java" and java_classes is not None:
        command = [program, "-cp", str(java_classes), "Verify", str(vector_path)]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )


def test_the_shared_vector_is_what_sftriggerd_signs() -> None:
    assert json.loads(VECTOR.read_text(encoding="utf-8")) == make_vector()


@pytest.mark.parametrize("language", sorted(EXAMPLE_RUNNERS))
def test_each_example_accepts_the_shared_vector(language: str) -> None:
    result = run_example(language, VECTOR)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert result.stdout.strip() == "verified"


@pytest.mark.parametrize("case", sorted(ACCEPTED))
@pytest.mark.parametrize("language", sorted(EXAMPLE_RUNNERS))
def test_each_example_accepts_what_it_should(
    language: str, case: str, tmp_path: Path, java_classes: Path | None
) -> None:
    path = tmp_path / "vector.json"
    write_vector(path, ACCEPTED[case](make_vector()))
    result = run_example(language, path, java_classes)
    assert result.returncode == 0, (result.stdout, result.stderr)


@pytest.mark.parametrize("case", sorted(TAMPERED))
@pytest.mark.parametrize("language", sorted(EXAMPLE_RUNNERS))
def test_each_example_refuses_a_tampered_vector(
    language: str, case: str, tmp_path: Path, java_classes: Path | None
) -> None:
    path = tmp_path / "vector.json"
    write_vector(path, TAMPERED[case](make_vector()))
    result = run_example(language, path, java_classes)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout.strip() == "NOT verified"


def _library_accepts(vector: dict[str, Any]) -> bool:
    headers = {
        "webhook-id": vector["id"],
        "webhook-timestamp": str(vector["timestamp"]),
        "webhook-signature": vector["signature"],
    }
    try:
        Webhook(vector["secret"]).verify(vector["body"].encode("utf-8"), headers)
    except WebhookVerificationError:
        return False
    return True


@pytest.mark.parametrize("case", [*sorted(ACCEPTED), *sorted(set(TAMPERED) - {"stale"})])
def test_the_python_example_agrees_with_the_standard_webhooks_library(
    case: str, tmp_path: Path
) -> None:
    """Signed at the current time, since the library checks the timestamp against its own
    clock; `stale` is left out for that reason (the example's clock is the vector's)."""
    now = int(time.time())
    change = ACCEPTED.get(case) or TAMPERED[case]
    vector = {**change(make_vector(timestamp=now)), "now": now}
    path = tmp_path / "vector.json"
    write_vector(path, vector)
    example_accepts = run_example("python", path).returncode == 0
    assert example_accepts == _library_accepts(vector) == (case in ACCEPTED)


if __name__ == "__main__":
    write_vector(VECTOR, make_vector())
    print(f"wrote {VECTOR.relative_to(ROOT)}")
