"""How the Pub/Sub API says what went wrong, read into the neutral outcomes of
sources/transport.py.

Salesforce names the cause in the `error-code` trailer (`sfdc.platform.eventbus.grpc....`);
the status alone does not say what to do. The code decides where it is known, the status
where it is not:

- UNAUTHENTICATED, or an `...auth...` code: Reauthenticate;
- a replay id code (`...replayid.corrupted`, `...replayid.validation.failed`) on a subscribe
  from a stored position, before the stream's first answer (however late the refusal
  comes): ReplayExpired (the loop back-fills by time, as for CometD);
- a topic code (`...topic.not.found`, `...topic.permission...`), or NOT_FOUND or
  PERMISSION_DENIED on subscribe: ChannelUnavailable;
- an established stream ended by UNAVAILABLE or CANCELLED (a reset connection, a server
  restart, Salesforce's `service.unavailable`), or closed by the server without an error:
  Reconnect;
- everything else (the concurrent-client limit, RESOURCE_EXHAUSTED, UNAVAILABLE before the
  stream was established, internal errors): TransportFailure, back off.

The message always names the status and the code, so the trigger's `last_error` shows them.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc

from .transport import (
    ChannelUnavailable,
    Reauthenticate,
    Reconnect,
    ReplayExpired,
    TransportFailure,
    TransportOutcome,
)

ERROR_CODE_KEY = "error-code"
_MAX_DETAILS_CHARS = 300
_CHANNEL_STATUSES = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED)
_DROPPED_STATUSES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)


def error_code(trailers: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The `error-code` trailer, or "" when there is none (never raises)."""
    for key, value in trailers or ():
        if isinstance(key, str) and key.lower() == ERROR_CODE_KEY:
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            return text.strip()
    return ""


def describe(call: str, status: grpc.StatusCode, code: str, details: str) -> str:
    named = f"{status.name} {code}" if code else status.name
    text = " ".join(details.split())[:_MAX_DETAILS_CHARS]
    return f"Pub/Sub {call} failed: {named}: {text}" if text else f"Pub/Sub {call} failed: {named}"


def outcome_of(
    call: str,
    status: grpc.StatusCode,
    code: str,
    details: str,
    *,
    from_position: bool = False,
    established: bool = False,
    answered: bool | None = None,
) -> TransportOutcome:
    """The neutral outcome of a failed call. `from_position`: a Subscribe that started after
    a stored replay id; `established`: the stream was subscribed (a drop is a Reconnect);
    `answered`: the stream's first answer arrived (the server accepted the position), by
    default as `established`."""
    message = describe(call, status, code, details)
    lowered = code.lower()
    if status is grpc.StatusCode.UNAUTHENTICATED or ".auth." in lowered:
        return Reauthenticate(message)
    if "replayid" in lowered:
        if from_position and not (established if answered is None else answered):
            return ReplayExpired(message)
        return TransportFailure(message)
    if ".topic." in lowered and "mismatch" not in lowered:
        return ChannelUnavailable(message)
    if status in _CHANNEL_STATUSES and not code and call in ("Subscribe", "GetTopic"):
        return ChannelUnavailable(message)
    if established and status in _DROPPED_STATUSES:
        return Reconnect(message)
    return TransportFailure(message)


def stream_ended(status: grpc.StatusCode, details: str) -> TransportOutcome:
    """The server closed the stream without an error (Salesforce closes one left with nothing
    requested after about a minute): open a new one."""
    return Reconnect(describe("Subscribe", status, "", details or "the server closed the stream"))
