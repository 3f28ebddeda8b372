"""From what an attempt came back with to the outcome the store records:

- 2xx: delivered;
- 410 Gone: dead at once (the receiver says this will never work);
- 429 and 503: the endpoint's `Retry-After` (seconds or HTTP-date) when it gives a usable one;
- anything else, a timeout or a connection error: the endpoint's schedule, until max_age.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from ..config.settings import RetrySettings
from ..store.records import AttemptTrace, Claim, Dead, Delivered, Outcome, Retry
from ..urls import strip_userinfo
from .answers import Answer, Failure, Result
from .backoff import honour_retry_after, next_attempt_at
from .retry_after import parse_retry_after

SNIPPET_CHARS = 200
# How much of an answer's body the attempt history keeps.
ANSWER_CHARS = 512
# Shorter secret values (or cut-off parts of one) are not looked for: too many false hits.
_SHORTEST_SECRET = 4
REDACTED = "[redacted]"
_HONOURS_RETRY_AFTER = frozenset({429, 503})
_WHSEC = re.compile(r"whsec_(?:[A-Za-z0-9+/=]|\\/)+")
_WHITESPACE = re.compile(r"\s+")


def classify(
    result: Result,
    claim: Claim,
    retry: RetrySettings,
    now: datetime,
    jitter: float,
    secrets: Sequence[str] = (),
    store_ahead: timedelta = timedelta(),
) -> Outcome:
    """The outcome of one attempt, answered at `now` (this process's clock). `secrets` are
    scrubbed from the answer's snippet, since a receiver may echo our headers back and
    `last_error` is shown by the admin API. `store_ahead` is how far the store's clock runs
    ahead of `now`'s: the claim's `retry_since` is the store's time, and the max_age
    deadline counted from it must not move by the clocks' skew."""
    since = claim.retry_since - store_ahead
    if isinstance(result, Failure):
        return _retry_or_dead(claim, since, retry, now, jitter, None, strip_userinfo(result.error))
    if result.ok:
        return Delivered(status=result.status)
    error = answer_error(result, secrets)
    if result.status == 410:
        return Dead(status=410, error=error)
    if result.status in _HONOURS_RETRY_AFTER:
        asked = parse_retry_after(result.retry_after, now)
        if asked is not None:
            at = honour_retry_after(asked, retry.max_age, since, now)
            if at is None:
                return _aged_out(result.status, error)
            return Retry(delay=at - now, status=result.status, error=error)
    return _retry_or_dead(claim, since, retry, now, jitter, result.status, error)


def _retry_or_dead(
    claim: Claim,
    since: datetime,
    retry: RetrySettings,
    now: datetime,
    jitter: float,
    status: int | None,
    error: str,
) -> Outcome:
    at = next_attempt_at(retry.schedule, retry.max_age, claim.attempts, since, now, jitter)
    if at is None:
        return _aged_out(status, error)
    # A delay, not a time: the store adds it to its own clock (see store.base).
    return Retry(delay=at - now, status=status, error=error)


def _aged_out(status: int | None, error: str) -> Dead:
    # Says why it died, so an operator tells "gave up" apart from "410 Gone".
    return Dead(status=status, error=f"{error} (max_age reached)")


def answer_error(answer: Answer, secrets: Sequence[str] = ()) -> str:
    """`HTTP 500` followed by the start of what the endpoint said, if anything."""
    text = snippet(answer.body, secrets)
    return f"HTTP {answer.status}: {text}" if text else f"HTTP {answer.status}"


def traced(
    outcome: Outcome, result: Result, started_at: datetime, secrets: Sequence[str]
) -> Outcome:
    """The outcome with how its attempt went, for the attempt history."""
    answer = answer_excerpt(result.body, secrets) if isinstance(result, Answer) else None
    trace = AttemptTrace(
        started_at=started_at, duration_ms=max(round(result.duration_s * 1000), 0), answer=answer
    )
    # Built directly: dataclasses.replace costs more than the rest of this, per delivery.
    if isinstance(outcome, Delivered):
        return Delivered(status=outcome.status, trace=trace)
    if isinstance(outcome, Retry):
        return Retry(outcome.delay, outcome.status, outcome.error, trace)
    return Dead(status=outcome.status, error=outcome.error, trace=trace)


def outcome_name(outcome: Outcome) -> str:
    """delivered, retry or dead: how an attempt ended, for its trace."""
    if isinstance(outcome, Delivered):
        return "delivered"
    return "retry" if isinstance(outcome, Retry) else "dead"


def answer_excerpt(body: bytes, secrets: Sequence[str] = ()) -> str:
    """The start of an answer's body as the receiver wrote it (line breaks kept), with the
    secrets and URL user-info removed from the whole prefix read before it is cut, so a
    secret that straddles the cut leaves no part of itself behind."""
    if not body:
        return ""  # most 2xx answers: nothing to redact
    text = _redact(body.decode("utf-8", errors="replace"), secrets)
    return text if len(text) <= ANSWER_CHARS else text[: ANSWER_CHARS - 1] + "…"


def _without_cut_secret(text: str, secrets: Sequence[str]) -> str:
    """Only the start of the answer is read: a secret the read limit cut in two ends the
    text as a prefix of itself, which no whole-secret replace finds."""
    for secret in secrets:
        for length in range(len(secret) - 1, _SHORTEST_SECRET - 1, -1):
            if text.endswith(secret[:length]):
                return text[:-length] + REDACTED
    return text


def _redact(text: str, secrets: Sequence[str]) -> str:
    text = strip_userinfo(text)
    # JSON encoders may write `/` as `\/` (PHP's does by default): an echo of a secret in
    # that spelling is looked for too, or all after its first `/` would stay.
    spellings = {*secrets, *(s.replace("/", "\\/") for s in secrets)}
    known = sorted((s for s in spellings if len(s) >= _SHORTEST_SECRET), key=len, reverse=True)
    for secret in known:
        text = text.replace(secret, REDACTED)
    text = _without_cut_secret(text, known)
    return _WHSEC.sub(REDACTED, text)


def snippet(body: bytes, secrets: Sequence[str] = ()) -> str:
    """The answer body on one line, secrets removed, at most SNIPPET_CHARS characters."""
    text = _redact(_WHITESPACE.sub(" ", body.decode("utf-8", errors="replace")).strip(), secrets)
    if len(text) > SNIPPET_CHARS:
        text = text[: SNIPPET_CHARS - 1] + "…"
    return text
