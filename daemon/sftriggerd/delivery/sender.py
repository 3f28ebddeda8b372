"""One webhook POST on the injected session. Network trouble is a value, never an exception:
the caller classifies it like any other answer."""

from __future__ import annotations

import errno
import functools
import socket
import ssl
import time
from collections.abc import Mapping
from datetime import timedelta
from urllib.parse import urlsplit

import aiohttp

from .answers import Answer, Failure, FailureKind, Result

# Enough of an error answer for a 200-character snippet, even after whitespace is collapsed;
# an answer larger than this is not read further (its connection is then not reused).
BODY_PREFIX_BYTES = 4096


async def post_webhook(
    http: aiohttp.ClientSession,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    timeout: timedelta,
) -> Result:
    """POSTs `body` and returns the answer, or the failure when none usable came back."""
    timeout_s = timeout.total_seconds()
    started = time.monotonic()
    try:
        # Redirects are not followed: a redirected POST may become a GET without the body,
        # and the receiver's URL is configuration to fix, not to guess.
        async with http.post(
            url,
            data=body,
            headers=headers,
            timeout=_client_timeout(timeout_s),
            allow_redirects=False,
        ) as response:
            prefix = await _read_prefix(response)
            return Answer(
                status=response.status,
                retry_after=response.headers.get("Retry-After"),
                body=prefix,
                duration_s=time.monotonic() - started,
            )
    except TimeoutError:
        return Failure("timeout", f"timeout after {timeout_s:g}s", time.monotonic() - started)
    except aiohttp.ClientError as exc:
        kind, error = describe_client_error(exc)
        return Failure(kind, error, time.monotonic() - started)
    except OSError as exc:
        kind, error = os_error_cause(exc)
        return Failure(kind, error, time.monotonic() - started)
    except ValueError as exc:
        # The client lets some through: a host the resolver cannot encode (UnicodeError).
        kind, error = value_error_cause(url, exc)
        return Failure(kind, error, time.monotonic() - started)


@functools.lru_cache(maxsize=64)
def _client_timeout(total_s: float) -> aiohttp.ClientTimeout:
    # One per configured timeout rather than one per attempt.
    return aiohttp.ClientTimeout(total=total_s)


async def _read_prefix(response: aiohttp.ClientResponse) -> bytes:
    """The first BODY_PREFIX_BYTES of the answer; a body that breaks off keeps what came."""
    chunks: list[bytes] = []
    size = 0
    try:
        while size < BODY_PREFIX_BYTES:
            chunk = await response.content.read(BODY_PREFIX_BYTES - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError):
        # The status line and headers did arrive: that is the endpoint's answer.
        pass
    return b"".join(chunks)


def describe_client_error(exc: aiohttp.ClientError) -> tuple[FailureKind, str]:
    """The cause, named: refused, DNS, TLS (with the certificate's complaint), reset, ...
    Short and secret-free: the host at most, never the URL, which may carry credentials."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        reason = exc.certificate_error
        detail = getattr(reason, "verify_message", None) or _reason_text(reason)
        return "tls", f"TLS certificate verify failed for {exc.host}: {detail}"
    if isinstance(exc, aiohttp.ClientConnectorSSLError):
        return "tls", f"TLS handshake with {exc.host} failed: {_reason_text(exc.os_error)}"
    if isinstance(exc, aiohttp.ClientSSLError):
        return "tls", "TLS handshake failed"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "dns", f"DNS lookup failed for {exc.host}: {_reason_text(exc.os_error)}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return os_error_cause(exc.os_error)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "disconnected", "server disconnected without answering"
    if isinstance(exc, aiohttp.ClientResponseError):
        return "invalid_answer", "invalid HTTP answer"
    if isinstance(exc, aiohttp.ClientOSError):
        return os_error_cause(exc)
    if isinstance(exc, aiohttp.InvalidURL):
        return "request", "invalid URL"
    return "request", f"request failed: {type(exc).__name__}"


def value_error_cause(url: str, exc: ValueError) -> tuple[FailureKind, str]:
    """A request the client could not even make. Its words are not shown: they may quote
    the URL, which may carry credentials; the host may be named."""
    try:
        host = urlsplit(url).hostname or "?"
    except ValueError:
        host = "?"
    if isinstance(exc, UnicodeError) and "idna" in str(exc):
        return "dns", f"DNS lookup impossible for {host}: a part between dots is empty or too long"
    return "request", f"the request could not be made: {type(exc).__name__}"


def os_error_cause(exc: OSError) -> tuple[FailureKind, str]:
    # With several addresses (::1 and 127.0.0.1), asyncio folds the errors into one OSError
    # without an errno whose text still names them.
    if exc.errno == errno.ECONNREFUSED or f"[Errno {errno.ECONNREFUSED}]" in str(exc):
        return "refused", "connection refused"
    if exc.errno == errno.ECONNRESET:
        return "reset", "connection reset"
    if isinstance(exc, socket.gaierror):
        return "dns", f"DNS lookup failed: {_reason_text(exc)}"
    return "connection", f"connection failed: {_reason_text(exc)}"


def _reason_text(exc: BaseException) -> str:
    """An OS or SSL error's own words ("Name or service not known"), else its class."""
    if isinstance(exc, ssl.SSLError) and exc.reason:
        # OpenSSL's mnemonic, WRONG_VERSION_NUMBER, as the words of its own message.
        return str(exc.reason).lower().replace("_", " ")
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__
