"""What a Salesforce answer means for the caller, read from its status, headers and body.

Pure: no I/O, no clock of its own. Every function here reads outside input and either
returns a plain result or raises one of the errors documented below, never KeyError,
TypeError or an int-conversion ValueError, whatever Salesforce, a proxy or a hostile peer
sends.

- `classify` turns a REST answer into `Ok`, `RetryLater` (429, 503, other 5xx and the
  retryable error codes, with the `Retry-After` the answer asked for), `Relogin` (401 or
  `INVALID_SESSION_ID`) or `Refused` (a permanent error the caller raises).
- `classify_token` does the same for the OAuth token endpoint: a `Token`, `RetryLater` (the
  endpoint failed on its side) or `Refused` (the credentials were rejected).
- `query_page` and `expect_object` check the shape of a 2xx body and raise
  `MalformedAnswerError` when it is not what the API documents.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from ..errors import AuthenticationError, SalesforceError
from ..urls import strip_userinfo

# Salesforce asks for seconds to minutes; an hour bounds what a broken or hostile header can
# make us wait, and keeps every later time computation far from datetime's limits.
MAX_RETRY_AFTER_S = 3600.0
# Error text taken from an answer is cut here: a body can be megabytes.
MAX_MESSAGE_CHARS = 500

RETRYABLE_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION"})
RELOGIN_CODES = frozenset({"INVALID_SESSION_ID"})
# 408 and 429 are the 4xx statuses that say "not now" rather than "not this".
_RETRYABLE_STATUSES = frozenset({408, 429})
_DELAY_SECONDS = re.compile(r"[0-9]+(\.[0-9]+)?")


class SalesforceApiError(SalesforceError):
    """Salesforce refused a call; `error_code` is its code (MALFORMED_QUERY, ...)."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        self.status = status
        self.error_code = error_code
        self.sf_message = message
        super().__init__(f"Salesforce answered HTTP {status} {error_code}: {message.strip()}")


class SalesforceUnavailable(SalesforceError):
    """Salesforce (or the way to it) failed on its side; the same call may succeed later.

    `retry_after_s` is the wait the answer asked for, when it asked for one."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(strip_userinfo(message))


class MalformedAnswerError(SalesforceError):
    """A 2xx answer whose body is not JSON or not of the documented shape (a list where an
    object belongs, no `records`, a `nextRecordsUrl` that is not a path, ...)."""


@dataclass(frozen=True)
class Token:
    access_token: str
    instance_url: str
    issued_at_ms: int
    # The org's id, read from the identity URL (`id`) of the answer; the Pub/Sub API needs
    # it (`tenantid`). None when the answer named no identity URL.
    org_id: str | None = None

    def __repr__(self) -> str:
        return (
            f"Token(instance_url={self.instance_url!r}, issued_at_ms={self.issued_at_ms},"
            f" org_id={self.org_id!r})"
        )


@dataclass(frozen=True)
class Ok:
    body: Any


@dataclass(frozen=True)
class RetryLater:
    reason: str
    after_s: float | None = None  # what Retry-After asked for, bounded; None if nothing


@dataclass(frozen=True)
class Relogin:
    error: SalesforceApiError  # raised when a fresh login did not help


@dataclass(frozen=True)
class Refused:
    error: SalesforceError


Verdict = Ok | RetryLater | Relogin | Refused
TokenVerdict = Token | RetryLater | Refused


@dataclass(frozen=True)
class QueryPage:
    records: list[dict[str, Any]]
    total_size: int
    done: bool


def classify(status: int, headers: Mapping[str, str], body: bytes, now: datetime) -> Verdict:
    """What a REST answer means; `now` (aware) reads an HTTP-date `Retry-After`."""
    if status == 204 or (200 <= status < 300 and not body):
        return Ok(None)  # no content; a caller that needs a body says so (query_page, ...)
    parsed, is_json = parse_body(body)
    if 200 <= status < 300:
        if not is_json:
            return Refused(MalformedAnswerError(f"HTTP {status} answer is not JSON"))
        return Ok(parsed)
    error = api_error(status, parsed)
    retry_after_s = parse_retry_after(header(headers, "Retry-After"), now)
    # The status first: a 503 is "not now" whatever its body says.
    if status >= 500 or status in _RETRYABLE_STATUSES:
        return RetryLater(str(error), retry_after_s)
    if status == 401 or error.error_code in RELOGIN_CODES:
        return Relogin(error)
    # REQUEST_LIMIT_EXCEEDED arrives as a 403: the code decides, not the status alone.
    if error.error_code in RETRYABLE_CODES:
        return RetryLater(str(error), retry_after_s)
    if status == 407:
        return Refused(SalesforceError("the proxy refused our credentials (HTTP 407)"))
    return Refused(error)


def connection_failed(exc: BaseException) -> RetryLater:
    """A request that got no answer: always worth another try, its text without secrets."""
    return RetryLater(describe_exception(exc))


def describe_exception(exc: BaseException) -> str:
    """`Type text`, user-info stripped: aiohttp names `http://user:password@proxy`."""
    text = _clip(strip_userinfo(str(exc)))
    return f"{type(exc).__name__} {text}".strip()


def parse_retry_after(value: object, now: datetime) -> float | None:
    """Seconds to wait, in [0, MAX_RETRY_AFTER_S], or None when absent or unusable.

    Delay-seconds are ASCII digits only (`²` passes `isdigit()` but not `int()`); any
    length is fine since they are read as a float; an HTTP-date in the past is 0."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _DELAY_SECONDS.fullmatch(text):
        return min(float(text), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    # RFC 9110 dates are GMT; a date without a zone is read the same way.
    when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER_S)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, whatever its case, from any mapping (aiohttp's or a plain dict)."""
    wanted = name.lower()
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == wanted:
            return value if isinstance(value, str) else None
    return None


def parse_body(body: bytes) -> tuple[Any, bool]:
    """The JSON value of a body and whether it was JSON at all (empty is not)."""
    if not body:
        return None, False
    try:
        return json.loads(body.decode("utf-8", errors="replace")), True
    except (ValueError, RecursionError):
        # ValueError covers bad JSON and integers past Python's digit limit.
        return None, False


def api_error(status: int, body: Any) -> SalesforceApiError:
    """The error of a non-2xx answer: REST's `[{"errorCode", "message"}]` or OAuth's
    `{"error", "error_description"}`, or the bare status when the body is neither."""
    first: Any = body[0] if isinstance(body, list) and body else body
    if not isinstance(first, dict):
        first = {}
    code = _text(first.get("errorCode")) or _text(first.get("error")) or f"HTTP_{status}"
    message = _text(first.get("message")) or _text(first.get("error_description"))
    return SalesforceApiError(status, _clip(code, 100), _clip(strip_userinfo(message)))


def query_page(body: Any) -> tuple[QueryPage, str | None]:
    """A query answer's page and the path of the next one (None when done)."""
    if not isinstance(body, dict):
        raise MalformedAnswerError("query answer is not a JSON object")
    records = body.get("records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise MalformedAnswerError("query answer has no records list of objects")
    done = body.get("done", True)
    total_size = body.get("totalSize", len(records))
    if not isinstance(done, bool):
        raise MalformedAnswerError("query answer's done is not a boolean")
    if not isinstance(total_size, int) or isinstance(total_size, bool) or total_size < 0:
        raise MalformedAnswerError("query answer's totalSize is not a count")
    page = QueryPage(records=records, total_size=total_size, done=done)
    if done:
        return page, None
    next_url = body.get("nextRecordsUrl")
    if not isinstance(next_url, str) or not _is_data_path(next_url):
        raise MalformedAnswerError("query answer is not done but has no nextRecordsUrl path")
    return page, next_url


def expect_object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise MalformedAnswerError(f"{what}: expected a JSON object from Salesforce")
    return body


def classify_token(
    status: int, headers: Mapping[str, str], body: bytes, flow: str, now: datetime
) -> TokenVerdict:
    """What the OAuth token endpoint's answer means for a login with `flow`."""
    parsed, is_json = parse_body(body)
    if 200 <= status < 300:
        if not is_json:
            return Refused(MalformedAnswerError(f"token endpoint answered HTTP {status}, not JSON"))
        return _granted(parsed, now)
    error = _text(parsed.get("error")) if isinstance(parsed, dict) else ""
    # Salesforce answers `unknown_error: retry your request` when it failed on its side.
    if status >= 500 or status in _RETRYABLE_STATUSES or error == "unknown_error":
        reason = f"token endpoint answered HTTP {status}"
        return RetryLater(reason, parse_retry_after(header(headers, "Retry-After"), now))
    return Refused(AuthenticationError(describe_refusal(flow, status, parsed)))


def _granted(body: Any, now: datetime) -> Token | Refused:
    if not isinstance(body, dict):
        return Refused(MalformedAnswerError("token answer is not a JSON object"))
    access_token, instance_url = body.get("access_token"), body.get("instance_url")
    if not isinstance(access_token, str) or not access_token:
        return Refused(MalformedAnswerError("token answer has no access_token"))
    if not isinstance(instance_url, str) or not re.fullmatch(r"https?://[^\s/@]+/?", instance_url):
        return Refused(MalformedAnswerError("token answer has no usable instance_url"))
    issued = body.get("issued_at")
    issued_at_ms = int(now.timestamp() * 1000)
    if isinstance(issued, str) and re.fullmatch(r"[0-9]{1,16}", issued):
        issued_at_ms = int(issued)
    elif isinstance(issued, int) and not isinstance(issued, bool) and 0 <= issued < 10**16:
        issued_at_ms = issued
    return Token(access_token, instance_url.rstrip("/"), issued_at_ms, org_id_of(body.get("id")))


# `https://login.salesforce.com/id/00D.../005...`: an org id is 15 or 18 characters.
_IDENTITY_URL = re.compile(
    r"https?://[^\s/@]+/id/(00D[0-9A-Za-z]{12}(?:[0-9A-Za-z]{3})?)/[^/\s]+/?"
)


def org_id_of(identity_url: object) -> str | None:
    """The org id in a token answer's identity URL; None for anything else."""
    if not isinstance(identity_url, str):
        return None
    found = _IDENTITY_URL.fullmatch(identity_url)
    return found.group(1) if found else None


def describe_refusal(flow: str, status: int, body: Any) -> str:
    if isinstance(body, dict) and "error" in body:
        error = _clip(_text(body.get("error")), 100)
        description = _clip(strip_userinfo(_text(body.get("error_description"))))
        hint = _HINTS.get((error, description), "")
        return f"Salesforce rejected the {flow} login: {error}: {description}{hint}"
    if status == 407:
        return f"the proxy refused our credentials for the {flow} login (HTTP 407)"
    return f"Salesforce rejected the {flow} login with HTTP {status}"


_HINTS = {
    ("invalid_grant", "authentication failure"): (
        " (wrong username, password or security token, an IP restriction, or the flow is"
        " blocked for this org)"
    ),
    ("invalid_client_id", "client identifier invalid"): " (check salesforce.auth.client_id)",
    ("invalid_client", "invalid client credentials"): " (check salesforce.auth.client_secret)",
    ("unsupported_grant_type", "grant type not supported"): (
        " (enable this flow on the connected app)"
    ),
    ("invalid_grant", "request not supported on this domain"): (
        " (client_credentials needs the My Domain URL as salesforce.login_url)"
    ),
    ("invalid_grant", "user hasn't approved this consumer"): (
        " (pre-authorize the user's profile or permission set on the connected app)"
    ),
}


def _is_data_path(path: str) -> bool:
    # The next page is a path on the same instance; anything else (a full URL, a path
    # elsewhere) would send our token where the answer says.
    return path.startswith("/services/data/") and re.fullmatch(r"[\x21-\x7e]+", path) is not None


def _text(value: Any) -> str:
    """A scalar from a body as text; containers and null as empty."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return ""


def _clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
