"""Structured logs: JSON or console, stable snake_case event names, secrets never written.

The redactor runs last before rendering, on every log line including those of the standard
library (aiohttp's), so a secret is caught wherever it appears: under a sensitive key, inside
a string, as the user-info of a URL, or as a value we know from the configuration (including
the passwords of the configured URLs, percent-decoded too).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from .urls import strip_userinfo

REDACTED = "[redacted]"

_SENSITIVE_KEY = re.compile(
    r"pass(word)?|secret|token|authorization|cookie|private_key|api_key|assertion|signature",
    re.IGNORECASE,
)
# Shapes of secrets that can turn up inside free text (URLs, error bodies, reprs).
_SECRET_SHAPES = (
    re.compile(r"whsec_[A-Za-z0-9+/=]+"),
    # A scheme then its credentials, unless what follows is a word of prose ("OAuth
    # Policies", "Bearer token", "OAuth Username-Password Flows"): short plain words, each
    # all lower, all upper or capitalised. Credentials mix cases, digits or punctuation, and
    # one of plain letters is long: past 12 letters a word is taken for a credential.
    re.compile(
        r"\b((?i:Bearer|OAuth|Basic))\s+"
        r"(?!(?:[A-Z]?[a-z]{1,11}|[A-Z]{1,6})(?:-(?:[A-Z]?[a-z]{1,11}|[A-Z]{1,6}))*"
        r"(?![A-Za-z0-9._~+/!=-]))"
        r"[A-Za-z0-9._~+/!=-]+"
    ),
    re.compile(r"\b00D[A-Za-z0-9]{12,15}![A-Za-z0-9._~+/=-]+"),  # Salesforce access token
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"(?i)((?:password|client_secret|refresh_token|access_token|assertion)=)[^&\s\"']+"),
)


class SecretRedactor:
    """A structlog processor; `remember` adds values known to be secret (from the config)."""

    def __init__(self) -> None:
        self._known: set[str] = set()
        self._public: re.Pattern[str] | None = None

    def remember(self, secrets: Iterable[str]) -> None:
        self._known.update(secret for secret in secrets if secret)

    def remember_public(self, values: Iterable[str]) -> None:
        """Values shown as they are even where a secret is part of them: the user named as
        `admin@emulator.local` whose password is `emulator` stays named so."""
        kept = sorted({value for value in values if value}, key=len, reverse=True)
        self._public = re.compile("|".join(map(re.escape, kept))) if kept else None

    def __call__(self, logger: WrappedLogger, name: str, event_dict: EventDict) -> EventDict:
        return {key: self._clean(key, value) for key, value in event_dict.items()}

    def _clean(self, key: str, value: Any) -> Any:
        if key != "event" and _SENSITIVE_KEY.search(key) and value not in (None, "", False):
            return REDACTED
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, MutableMapping):
            return {k: self._clean(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean("", item) for item in value]
        if isinstance(value, BaseException):
            return self.scrub(f"{type(value).__name__}: {value}")
        return value

    def scrub(self, text: str) -> str:
        if self._public is None:
            return self._scrub(text)
        # Public values are kept; the text between them is scrubbed.
        pieces, start = [], 0
        for match in self._public.finditer(text):
            pieces += [self._scrub(text[start : match.start()]), match.group()]
            start = match.end()
        return "".join([*pieces, self._scrub(text[start:])])

    def _scrub(self, text: str) -> str:
        # A URL's user-info goes first and whole (proxy and database URLs carry passwords);
        # then known secrets, longest first, so one that contains another is replaced whole.
        text = strip_userinfo(text)
        for secret in sorted(self._known, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, REDACTED)
        for shape in _SECRET_SHAPES:
            text = shape.sub(_keep_prefix, text)
        return text


def _keep_prefix(match: re.Match[str]) -> str:
    # Keep "password=" or "Bearer" so the line still says what was removed.
    prefix = match.group(1) if match.re.groups else None
    if not prefix:
        return REDACTED
    return prefix + REDACTED if prefix.endswith("=") else f"{prefix} {REDACTED}"


redactor = SecretRedactor()


def configure_logging(level: str = "info", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Sets up structlog and routes the standard library's loggers through the same chain."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, redactor, renderer],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp logs every admin request at info; that is noise for a daemon's log.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
